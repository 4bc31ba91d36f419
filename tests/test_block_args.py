import pytest

from efficientnet_keras import block_args
from efficientnet_keras.models import VARIANTS


def _all_strings():
    return sorted({s for v in VARIANTS.values() for s in v.blocks})


@pytest.mark.parametrize("s", _all_strings())
def test_round_trip_every_variant_string(s):
    assert block_args.encode(block_args.decode(s)) == s


def test_decode_fields():
    b = block_args.decode("r2_k3_s22_e6_i16_o24_se0.25")
    assert (b.repeats, b.kernel_size, b.strides, b.stride, b.expand_ratio) == (2, 3, (2, 2), 2, 6)
    assert (b.input_filters, b.output_filters, b.se_ratio, b.conv_type, b.id_skip) == (16, 24, 0.25, 0, True)
    fused = block_args.decode("r2_k3_s1_e1_i24_o24_c1")
    assert fused.fused and fused.se_ratio is None and fused.strides == 1
    assert not block_args.decode("r1_k3_s1_e1_i8_o8_noskip").id_skip


def test_transformer_stage_fields():
    t = block_args.decode("r5_s2_e4_i192_o384_c2")
    assert t.transformer and t.kernel_size is None and t.head_size == block_args.DEFAULT_HEAD_SIZE == 32
    assert block_args.encode(t) == "r5_s2_e4_i192_o384_h32_c2"  # the head size is written out
    assert block_args.decode("r5_s2_e4_i192_o384_h64_c2").head_size == 64


def test_encode_canonical_order_from_any_order():
    assert block_args.encode(block_args.decode("o24_i16_r2_k3_s2_e6_se0.25")) == "r2_k3_s2_e6_i16_o24_se0.25"


@pytest.mark.parametrize(
    "s, fragment",
    [
        ("r2_k3_s1_e1_x24", "token 5 'x24'"),
        ("r0_k3_s1_e1_i24_o24", "token 1 'r0'"),
        ("", "empty"),
        ("   ", "empty"),
        ("r2_k4_s1_e1_i24_o24", "token 2 'k4' must give an odd kernel size"),
        ("r2_k3_s3_e1_i24_o24", "token 3 's3'"),
        ("r2_k3_s12_e1_i24_o24", "token 3 's12'"),
        ("r2_k3_s1_e1_i24_o24_se1.5", "token 7 'se1.5'"),
        ("r2_k3_s1_e1_i24_o24_sex", "token 7 'sex'"),
        ("r2_k3_s1_e1_i24_o24_c3", "token 7 'c3'"),
        ("r2_k3_s2_e4_i192_o384_c2", "a Transformer stage (c2) has no kernel size"),
        ("r2_s2_e4_i192_o384_se0.25_c2", "a Transformer stage (c2) has no squeeze-excite"),
        ("r2_k3_s2_e4_i192_o384_h32", "only Transformer stages (c2) have a head size"),
        ("r2_s2_e4_i192_o384", "missing token(s) 'k<kernel size>'"),
        ("r2_s2_e4_i192_o384_h0_c2", "token 6 'h0'"),
        ("r2_k3_s1_e1_i24_o24_r3", "token 7 'r3' repeats"),
        ("r2_k3_s1_e1_i24", "missing token(s) 'o<output filters>'"),
        ("r2_k3_s1_e_i24_o24", "token 4 'e'"),
        ("r2_k3_s1_e1_i24_o24_noskipx", "token 7 'noskipx'"),
        ("r2__k3_s1_e1_i24_o24", "token 2 ''"),
    ],
)
def test_bad_strings_name_the_token(s, fragment):
    with pytest.raises(ValueError) as e:
        block_args.decode(s)
    assert fragment in str(e.value)


def test_decode_all_rejects_empty_network():
    with pytest.raises(ValueError, match="at least one"):
        block_args.decode_all([])
