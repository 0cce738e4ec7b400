import type { Activation, DenseWeights } from '../model/types';
import {
  AttributeProto_AttributeType,
  TensorProto_DataType,
  type AttributeProtoSchema,
  type GraphProtoSchema,
  type MessageInitShape,
  type NodeProtoSchema,
  type TensorProtoSchema,
  type ValueInfoProtoSchema,
} from './proto';

type NodeInit = MessageInitShape<typeof NodeProtoSchema>;
type TensorInit = MessageInitShape<typeof TensorProtoSchema>;
type ValueInfoInit = MessageInitShape<typeof ValueInfoProtoSchema>;
type AttributeInit = MessageInitShape<typeof AttributeProtoSchema>;
export type GraphInit = MessageInitShape<typeof GraphProtoSchema>;

/** Name of the dynamic first dimension of every graph input and output. */
export const BATCH_DIM = 'batch';

/** Slope of leaky_relu for x < 0; the native engine uses the same constant. */
export const LEAKY_RELU_SLOPE = 0.01;

/**
 * Accumulates the nodes, initializers, inputs and outputs of one float32 ONNX graph.
 * It knows ONNX, not VAEs: the graph topology lives in graphs.ts.
 */
export class GraphBuilder {
  private readonly nodes: NodeInit[] = [];
  private readonly initializers: TensorInit[] = [];
  private readonly inputs: ValueInfoInit[] = [];
  private readonly outputs: ValueInfoInit[] = [];
  private readonly opCounts = new Map<string, number>();

  /** Declares a graph input of shape [batch, width]. Returns its name. */
  input(name: string, width: number): string {
    this.inputs.push(batchedFloat(name, width));
    return name;
  }

  /** Declares a graph output of shape [batch, width]; some node must produce `name`. */
  output(name: string, width: number): void {
    this.outputs.push(batchedFloat(name, width));
  }

  /** Adds a float32 constant, stored as little-endian raw_data. Returns its name. */
  initializer(name: string, dims: readonly number[], values: Float32Array): string {
    this.initializers.push({
      name,
      dims: dims.map(BigInt),
      dataType: TensorProto_DataType.FLOAT,
      rawData: float32LittleEndian(values),
    });
    return name;
  }

  /** Adds a node. Its name is `<opType>_<n>`, unique within the graph. Returns the first output. */
  node(opType: string, inputs: readonly string[], outputs: readonly string[], attribute: AttributeInit[] = []): string {
    const n = this.opCounts.get(opType) ?? 0;
    this.opCounts.set(opType, n + 1);
    this.nodes.push({ name: `${opType}_${n}`, opType, input: [...inputs], output: [...outputs], attribute });
    return outputs[0];
  }

  /**
   * y = x W + b as one Gemm. Our weights are stored [inDim, outDim], which is Gemm's B
   * without transposition, so transB = 0 and the data is used as is.
   */
  dense(x: string, layer: DenseWeights, prefix: string, y = `${prefix}.out`): string {
    const w = this.initializer(`${prefix}.weight`, [layer.inDim, layer.outDim], layer.weight);
    const b = this.initializer(`${prefix}.bias`, [layer.outDim], layer.bias);
    return this.node('Gemm', [x, w, b], [y], [intAttribute('transB', 0)]);
  }

  /** Applies a hidden-layer activation as the matching ONNX op. */
  activation(x: string, activation: Activation, y: string): string {
    switch (activation) {
      case 'relu':
        return this.node('Relu', [x], [y]);
      case 'leaky_relu':
        return this.node('LeakyRelu', [x], [y], [floatAttribute('alpha', LEAKY_RELU_SLOPE)]);
      case 'tanh':
        return this.node('Tanh', [x], [y]);
      case 'sigmoid':
        return this.node('Sigmoid', [x], [y]);
      case 'softplus':
        return this.node('Softplus', [x], [y]);
    }
  }

  build(name: string, docString: string): GraphInit {
    return {
      name,
      docString,
      node: this.nodes,
      initializer: this.initializers,
      input: this.inputs,
      output: this.outputs,
    };
  }
}

function batchedFloat(name: string, width: number): ValueInfoInit {
  return {
    name,
    type: {
      value: {
        case: 'tensorType',
        value: {
          elemType: TensorProto_DataType.FLOAT,
          shape: {
            dim: [{ value: { case: 'dimParam', value: BATCH_DIM } }, { value: { case: 'dimValue', value: BigInt(width) } }],
          },
        },
      },
    },
  };
}

function intAttribute(name: string, value: number): AttributeInit {
  return { name, type: AttributeProto_AttributeType.INT, i: BigInt(value) };
}

function floatAttribute(name: string, value: number): AttributeInit {
  return { name, type: AttributeProto_AttributeType.FLOAT, f: value };
}

/** ONNX raw_data is little-endian whatever the host; a DataView makes that explicit. */
function float32LittleEndian(values: Float32Array): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i], true);
  return bytes;
}
