"""The Caffe prototxt reader and its shape inference. Expected shapes and parameter counts are Caffe's own
arithmetic written out (conv: (in + 2p - (d(k-1)+1)) // s + 1; pool: ceil((in + 2p - k) / s) + 1, minus one
when padded and the last window starts in the padding), never taken from the code under test."""
import textwrap

import pytest

from reference_models import PROTOTXT_DIR
from reconcile.errors import UserError
from reconcile.frontends import prototxt

FIELDS = ("name", "kind", "input_shapes", "output_shape", "kernel", "stride", "padding", "dilation", "groups",
          "bias", "params")


def write(tmp_path, text: str, name: str = "net.prototxt"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def header(*dims: int) -> str:
    return f'name: "t"\ninput: "data"\ninput_shape {{ {" ".join(f"dim: {d}" for d in dims)} }}\n'


def net(dims: tuple, body: str) -> str:
    """The 3-line header, then `body` from line 4 on."""
    return header(*dims) + textwrap.dedent(body).lstrip("\n")


def load(tmp_path, text: str):
    return prototxt.load(write(tmp_path, text))


# --- the document's LeNet ------------------------------------------------------------------------------------


def test_lenet_prototxt_ir_equals_the_torch_ir():
    from reconcile.models import layer_ir, reference

    spec = reference("lenet")
    caffe, torch = layer_ir(spec, "caffe"), layer_ir(spec, "torch")
    assert caffe.framework == "caffe" and caffe.input_shape == (1, 1, 28, 28)
    for name in ("conv1", "pool1", "conv2", "pool2", "ip1", "ip2"):
        mine, theirs = caffe.layer(name), torch.layer(name)
        assert {f: getattr(mine, f) for f in FIELDS} == {f: getattr(theirs, f) for f in FIELDS}, name
    # the hand arithmetic behind that equality
    assert caffe.layer("conv1").output_shape == (1, 20, (28 - 5) // 1 + 1, 24)  # 20x24x24
    assert caffe.layer("conv1").params == 5 * 5 * 1 * 20 + 20 == 520
    assert caffe.layer("pool2").output_shape == (1, 50, 4, 4)  # ceil((8 - 2) / 2) + 1 = 4
    assert caffe.layer("ip1").input_shapes == ((1, 50 * 4 * 4),)  # InnerProduct flattens 50x4x4 -> 800
    assert caffe.layer("ip1").params == 800 * 500 + 500 == 400_500


def test_lenet_relu1_is_an_in_place_act_layer():
    model = prototxt.load(PROTOTXT_DIR / "lenet.prototxt")
    relu = model.layer("relu1")
    assert (relu.kind, relu.op, relu.input_shapes, relu.output_shape) == ("act", "relu", ((1, 500),), (1, 500))
    assert [layer.name for layer in model.layers] == ["conv1", "pool1", "conv2", "pool2", "ip1", "relu1", "ip2"]
    assert model.layer("ip2").input_shapes == ((1, 500),)  # ip2 reads the blob relu1 rewrote in place


# --- the text format -------------------------------------------------------------------------------------------


def test_text_format_comments_quotes_optional_colon_repeats_and_lists():
    doc = prototxt.parse_text(textwrap.dedent("""
        # a comment
        name: 'single'  # trailing comment
        shape: { dim: 1 dim: -2 }
        shape { dim: [3, 4] }
        pool: MAX  scale: 0.5  eps: 1e-5
        escaped: "a \\"quoted\\" word"
    """).lstrip("\n"))
    assert doc.get("name") == "single"
    assert [s.all("dim") for s in doc.all("shape")] == [[1, -2], [3, 4]]
    assert isinstance(doc.get("pool"), prototxt.Ident) and doc.get("pool") == "MAX"
    assert (doc.get("scale"), doc.get("eps")) == (0.5, 1e-5)
    assert doc.get("escaped") == 'a "quoted" word'
    assert doc.field("pool").line == 5


# --- shapes ----------------------------------------------------------------------------------------------------


def test_pooling_rounds_up_where_floor_and_ceil_differ(tmp_path):
    model = load(tmp_path, net((1, 3, 7, 7), """
        layer { name: "ceil" type: "Pooling" bottom: "data" top: "ceil"
                pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
        layer { name: "clip" type: "Pooling" bottom: "data" top: "clip"
                pooling_param { pool: AVE kernel_size: 2 stride: 2 pad: 1 } }
        layer { name: "floor" type: "Pooling" bottom: "data" top: "floor"
                pooling_param { pool: MAX kernel_size: 2 stride: 2 round_mode: FLOOR } }
    """))
    # (7 - 2) / 2 = 2.5: ceil -> 3 + 1 = 4 (floor would give 3)
    assert model.layer("ceil").output_shape == (1, 3, 4, 4)
    assert model.layer("ceil").kind == "pool_max"
    # (7 + 2 - 2) / 2 = 3.5: ceil -> 4 + 1 = 5, but the 5th window starts at 4*2 = 8 >= 7 + 1: dropped -> 4
    assert model.layer("clip").output_shape == (1, 3, 4, 4)
    assert (model.layer("clip").kind, model.layer("clip").padding) == ("pool_avg", (1, 1))
    assert model.layer("floor").output_shape == (1, 3, 3, 3)  # 2.5 -> 2 + 1


def test_grouped_dilated_padded_strided_conv(tmp_path):
    model = load(tmp_path, net((1, 8, 10, 10), """
        layer { name: "g" type: "Convolution" bottom: "data" top: "g"
                convolution_param { num_output: 16 kernel_size: 3 group: 4 pad: 1 stride: 2 dilation: 2 } }
        layer { name: "rect" type: "Convolution" bottom: "data" top: "rect"
                convolution_param { num_output: 6 kernel_h: 3 kernel_w: 1 pad_h: 1 bias_term: false } }
    """))
    g = model.layer("g")
    # dilated kernel 2*(3-1)+1 = 5; (10 + 2*1 - 5) // 2 + 1 = 4
    assert g.output_shape == (1, 16, 4, 4)
    assert (g.kernel, g.stride, g.padding, g.dilation, g.groups, g.bias) == ((3, 3), (2, 2), (1, 1), (2, 2), 4, True)
    assert g.params == 3 * 3 * (8 // 4) * 16 + 16 == 304
    rect = model.layer("rect")
    # H: (10 + 2 - 3) // 1 + 1 = 10; W: (10 - 1) // 1 + 1 = 10
    assert (rect.output_shape, rect.kernel, rect.padding, rect.bias) == ((1, 6, 10, 10), (3, 1), (1, 0), False)
    assert rect.params == 3 * 1 * 8 * 6 == 144  # no bias term


def test_global_pooling(tmp_path):
    gap = load(tmp_path, net((2, 4, 7, 5), """
        layer { name: "gap" type: "Pooling" bottom: "data" top: "gap"
                pooling_param { pool: AVE global_pooling: true } }
    """)).layer("gap")
    assert (gap.kind, gap.output_shape, gap.kernel, gap.attr("global")) == ("pool_avg", (2, 4, 1, 1), (7, 5), True)
    assert gap.kernel_area * gap.out_elements == 7 * 5 * 4 * 2 == gap.in_elements  # a global pool reads its input once


def test_eltwise_concat_batchnorm_scale_softmax(tmp_path):
    model = load(tmp_path, net((2, 4, 6, 6), """
        layer { name: "a" type: "Convolution" bottom: "data" top: "a"
                convolution_param { num_output: 4 kernel_size: 1 } }
        layer { name: "b" type: "Convolution" bottom: "data" top: "b"
                convolution_param { num_output: 4 kernel_size: 1 } }
        layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" top: "sum" }
        layer { name: "prod" type: "Eltwise" bottom: "a" bottom: "b" top: "prod" eltwise_param { operation: PROD } }
        layer { name: "max" type: "Eltwise" bottom: "a" bottom: "b" top: "max" eltwise_param { operation: MAX } }
        layer { name: "cat" type: "Concat" bottom: "sum" bottom: "prod" top: "cat" }
        layer { name: "bn" type: "BatchNorm" bottom: "cat" top: "cat" }
        layer { name: "scale" type: "Scale" bottom: "cat" top: "cat" scale_param { bias_term: true } }
        layer { name: "drop" type: "Dropout" bottom: "cat" top: "cat" }
        layer { name: "prob" type: "Softmax" bottom: "cat" top: "prob" }
    """))
    kinds = {layer.name: layer.kind for layer in model.layers}
    assert kinds == {"a": "conv", "b": "conv", "sum": "add", "prod": "mul", "max": "unknown", "cat": "concat",
                     "bn": "bn", "scale": "mul", "prob": "softmax"}  # Dropout is a no-op, as in the torch IR
    assert model.layer("sum").input_shapes == ((2, 4, 6, 6), (2, 4, 6, 6))
    assert model.layer("cat").output_shape == (2, 4 + 4, 6, 6)
    bn, scale = model.layer("bn"), model.layer("scale")
    assert bn.params == 0 and bn.attr("caffe_blobs") == 8 + 8 + 1  # mean, variance, moving-average factor
    assert (scale.params, scale.bias) == (8 + 8, True)  # gamma and beta: BN + Scale = torch BatchNorm2d's 2C
    assert model.layer("prob").output_shape == (2, 8, 6, 6)


def test_input_forms_and_inner_product_axis(tmp_path):
    old = load(tmp_path, """
        input: "data"
        input_dim: 1 input_dim: 3 input_dim: 4 input_dim: 4
        layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"
                inner_product_param { num_output: 5 bias_term: false } }
    """)
    assert old.input_shape == (1, 3, 4, 4)
    fc = old.layer("fc")
    assert (fc.input_shapes, fc.output_shape, fc.params) == (((1, 48),), (1, 5), 3 * 4 * 4 * 5)
    layer_form = load(tmp_path, """
        layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 5 dim: 5 } } }
        layer { name: "train_only" type: "Data" top: "x" include { phase: TRAIN } }
        layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
                convolution_param { num_output: 2 kernel_size: 3 } }
    """)
    assert layer_form.input_shape == (2, 3, 5, 5)
    assert [layer.name for layer in layer_form.layers] == ["conv"]  # the TRAIN-only data layer is not in the IR
    assert layer_form.layer("conv").output_shape == (2, 2, 3, 3)


def test_unknown_layer_type_is_kept_not_dropped(tmp_path):
    model = load(tmp_path, net((1, 2, 4, 4), """
        layer { name: "odd" type: "MyCustomLayer" bottom: "data" top: "odd" }
        layer { name: "relu" type: "ReLU" bottom: "odd" top: "odd" }
    """))
    odd = model.layer("odd")
    assert (odd.kind, odd.op, odd.output_shape) == ("unknown", "MyCustomLayer", (1, 2, 4, 4))
    assert odd.attr("shape_assumed")
    assert prototxt.kind_of(prototxt.read_net(tmp_path / "net.prototxt").layers[0]) == "unknown"


# --- malformed input: one line, naming the file and line ----------------------------------------------------------

MALFORMED = [
    ('name: "x"\nlayer {\n  name: "a"\n', 2, "unbalanced brace"),
    ('name: "x"\nlayer { name: "a" }\n}\n', 3, "unbalanced brace"),
    ('name: "x"\nlayer {\n  convolution_param { kernel_size: @5 }\n}\n', 3, "bad token '@5'"),
    ('layer {\n  name:\n  type: "ReLU"\n}\n', 2, "missing value after 'name:'"),
    ('layer {\n  name "a"\n}\n', 2, "expected ':' or '{' after 'name'"),
    ('name: "x\n', 1, "unterminated string"),
    ('name: "x"\n{\n', 2, "expected a field name"),
]


@pytest.mark.parametrize("text, line, reason", MALFORMED)
def test_malformed_text_names_file_and_line(tmp_path, text, line, reason):
    path = write(tmp_path, text)
    with pytest.raises(UserError) as err:
        prototxt.load(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: ") and reason in message and "\n" not in message


def test_unknown_bottom_blob_names_the_layer_line(tmp_path):
    path = write(tmp_path, net((1, 1, 4, 4), """
        layer { name: "ok" type: "ReLU" bottom: "data" top: "data" }
        layer { name: "bad" type: "ReLU"
                bottom: "nope" top: "bad" }
    """))
    with pytest.raises(UserError, match=rf"^{path}:5: layer 'bad' \(ReLU\): bottom 'nope' is not produced"):
        prototxt.load(path)


def test_bad_field_type_and_missing_shape(tmp_path):
    path = write(tmp_path, net((1, 1, 4, 4), """
        layer { name: "c" type: "Convolution" bottom: "data" top: "c"
                convolution_param { num_output: "20" kernel_size: 3 } }
    """))
    with pytest.raises(UserError, match=rf"^{path}:5: .*num_output must be an integer"):
        prototxt.load(path)
    no_input = write(tmp_path, 'layer { name: "r" type: "Data" top: "data" }\n', "noinput.prototxt")
    with pytest.raises(UserError, match="does not give this data layer's shape"):
        prototxt.load(no_input)


def test_from_prototxt_rejects_malformed_files(tmp_path):
    from reconcile.models import from_prototxt

    path = write(tmp_path, 'name: "x"\nlayer {\n  name: "a"\n')
    with pytest.raises(UserError, match=rf"^{path}:2: unbalanced brace"):
        from_prototxt(str(path))
    with pytest.raises(UserError, match="no such prototxt file"):
        from_prototxt(str(tmp_path / "missing.prototxt"))
    path = write(tmp_path, header(1, 3, 8, 8), "ok.prototxt")
    spec = from_prototxt(str(path))
    assert (spec.name, spec.input_shape) == (str(path), (1, 3, 8, 8))  # named after the spec text
