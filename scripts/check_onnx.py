#!/usr/bin/python3
"""Validate ONNX files with the official checker (onnx.checker.check_model, full_check=True).

Usage: /usr/bin/python3 scripts/check_onnx.py MODEL.onnx [MODEL.onnx ...]

Prints one line per file ("ok <path>: ..." or "FAIL <path>: <reason>") and exits 1 if any
file fails, 2 on bad usage or when the onnx package is missing. full_check also runs
strict shape inference, which catches shape mismatches between initializers and nodes.
"""
import sys


def main(paths):
    if not paths:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        import onnx
    except ImportError:
        print("FAIL: the python 'onnx' package is not installed for " + sys.executable, file=sys.stderr)
        return 2

    failed = 0
    for path in paths:
        try:
            model = onnx.load(path)
            onnx.checker.check_model(model, full_check=True)
            opset = ",".join(f"{o.domain or 'ai.onnx'}:{o.version}" for o in model.opset_import)
            props = {p.key: p.value for p in model.metadata_props}
            print(f"ok {path}: ir_version={model.ir_version} opset={opset} graph={props.get('graph', '?')} "
                  f"nodes={len(model.graph.node)} onnx={onnx.__version__}")
        except Exception as err:  # the checker raises several exception types
            failed += 1
            reason = " ".join(str(err).split())
            print(f"FAIL {path}: {type(err).__name__}: {reason}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
