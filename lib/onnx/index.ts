/** ONNX export of trained VAEs: one self-contained model per graph kind. */
export {
  buildOnnxModel,
  DEFAULT_OPSET,
  exportAll,
  IR_VERSION,
  SUPPORTED_OPSETS,
  writeOnnxModel,
  type ExportAllOptions,
  type OnnxExportOptions,
} from './export';
export { ONNX_GRAPH_KINDS, ONNX_GRAPH_SIGNATURES, onnxFileName, type OnnxGraphKind, type OnnxTensorName } from './graph_kinds';
export { LIBRARY_NAME, readOnnxMetadata, type OnnxModelMetadata } from './metadata';
export { referenceForward, type ReferenceInputs, type ReferenceOutputs } from './reference';
