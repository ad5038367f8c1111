"""Read .tflite flatbuffers through the schema module that ships with tflite_micro."""

from __future__ import annotations

from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from train.errors import UserError

BUILTIN_NAMES: dict[int, str] = {
    v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)
}


def read_model(flatbuffer: bytes) -> schema.ModelT:
    try:
        return schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(flatbuffer, 0))
    except Exception as exc:  # flatbuffers raises struct/index errors on garbage
        raise UserError(f"the model is not a readable TFLite flatbuffer ({exc}); re-export it") from None
