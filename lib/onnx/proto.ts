/**
 * The ONNX protobuf schema (generated from onnx.proto by the onnx-buf package) and the
 * protobuf-es runtime that creates, serializes and parses its messages. Everything in
 * lib/onnx builds messages through these schemas; nothing encodes protobuf by hand.
 *
 * Loading: onnx-buf is published as an ES module only (dist/onnx_pb.js, no .cjs build).
 * Our CommonJS output reaches it through a plain `require`, which Node runs for synchronous
 * ES modules since 20.19 (require(esm), unflagged and silent). That keeps `buildOnnxModel`
 * synchronous, unlike a dynamic `import()`. Jest's module loader cannot require ES modules,
 * so test files point 'onnx-buf' at Node's own loader (see test/onnx_export.test.ts).
 *
 * `@bufbuild/protobuf` is onnx-buf's runtime dependency; its CommonJS build is used here.
 * Schemas are plain descriptor objects, so they work with either build of the runtime.
 */
export {
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  TensorProto_DataType,
  TensorProtoSchema,
  ValueInfoProtoSchema,
} from 'onnx-buf';
export { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
