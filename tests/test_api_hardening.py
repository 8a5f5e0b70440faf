"""The library API against what a careless or hostile caller passes (twenty-second session's audit):
forged weights files, files rewritten in place, colour profiles, 16-bit samples, numpy scalars."""
from __future__ import annotations

import io
import json
import os
import struct
import time
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import codec
from codec import api, zoo
from codec.errors import ConversionWarning, InputError
from codec.image_io import load_image


@pytest.fixture()
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(path)
    return path


def _forged_weights(path, architecture: str, config: dict):
    """A safetensors file with a config in its metadata and no tensors at all."""
    header = json.dumps({"__metadata__": {"architecture": architecture, "config": json.dumps(config)}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    return path


@pytest.mark.parametrize("change", [{"latent_channels": 10**9}, {"decoder_blocks": 10**7}, {"latent_channels": -1},
                                    {"levels": 20}, {}])
def test_a_forged_config_is_refused_before_anything_is_allocated(tmp_path, tiny_weights, photo, change):
    config = {**zoo.describe(tiny_weights).config, **change}
    forged = _forged_weights(tmp_path / "forged.safetensors", "walloc", config)
    start = time.perf_counter()
    with pytest.raises(InputError, match="outside 0..1024|do not match a walloc model"):
        codec.encode(photo, model=str(forged))
    assert time.perf_counter() - start < 20  # levels=20 would ask for 3e14 bytes if built for real


def _rewritten(source, target, change) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(source), "pt") as f:
        tensors, metadata = {k: f.get_tensor(k) for k in f.keys()}, f.metadata()
    change(tensors)
    save_file(tensors, str(target), metadata=metadata)


def test_broken_entropy_tables_are_refused_when_the_weights_load(tmp_path, tiny_weights, photo):
    broken = tmp_path / "tables.safetensors"
    _rewritten(tiny_weights, broken, lambda t: t["entropy_bottleneck._quantized_cdf"].zero_())
    with pytest.raises(InputError, match="tables of entropy_bottleneck are not usable"):
        codec.encode(photo, model=str(broken))


def test_a_weights_file_rewritten_in_place_is_loaded_again(tmp_path, tiny_weights, photo):
    path = tmp_path / "w.safetensors"
    path.write_bytes(tiny_weights.read_bytes())
    first = codec.encode(photo, model=str(path))

    def nudge(tensors):
        key = next(k for k in tensors if k.startswith("decoder") and tensors[k].is_floating_point())
        tensors[key] += 0.01

    _rewritten(tiny_weights, tmp_path / "other.safetensors", nudge)
    os.replace(tmp_path / "other.safetensors", path)
    second = codec.encode(photo, model=str(path))
    assert codec.bitstream.unpack(first)[0].weights_hash != codec.bitstream.unpack(second)[0].weights_hash
    codec.decode(second, model=str(path))  # the hash check passes against the new file


def test_load_model_names_a_bad_device(tiny_weights):
    with pytest.raises(InputError, match="unknown device 'bogus'"):
        zoo.load_model(zoo.describe(tiny_weights), device="bogus")


def test_older_weights_are_chosen_by_name_and_hash():
    older = next((e for e in zoo.all_versions() if "@" in e.path.stem and e.architecture == "walloc"), None)
    if older is None:
        pytest.skip("no older walloc weights are kept")
    entry = zoo.entry_for(older.path.stem)
    assert entry.path == older.path and entry.name == "walloc"
    with pytest.raises(InputError, match="NAME@HASH"):
        zoo.entry_for("walloc@00000000")


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def rgb_profile(name: str, red, green, blue, gamma: float = 2.2) -> bytes:
    """A minimal ICC v2 matrix/TRC display profile (D50 colorants, one gamma), for tests."""
    def xyz(v):
        return b"XYZ " + bytes(4) + b"".join(_s15(c) for c in v)

    text = name.encode("ascii") + b"\0"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(4 + 4 + 2 + 1 + 67)
    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)
    tags = [(b"desc", desc), (b"wtpt", xyz((0.9642, 1.0, 0.8249))), (b"rXYZ", xyz(red)), (b"gXYZ", xyz(green)),
            (b"bXYZ", xyz(blue)), (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    offset, table, data = 128 + 4 + 12 * len(tags), b"", b""
    for sig, body in tags:
        body += bytes(-len(body) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    header = (struct.pack(">I", offset + len(data)) + b"none" + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ " + bytes(12)
              + b"acsp" + bytes(28) + _s15(0.9642) + _s15(1.0) + _s15(0.8249) + bytes(48))
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


#: Display P3's colorants adapted to D50, as in Apple's profile.
P3 = ((0.5151, 0.2412, -0.0011), (0.2920, 0.6922, 0.0419), (0.1571, 0.0666, 0.7841))


def _png_with_profile(pixel, profile: bytes) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), pixel, np.uint8)).save(out, "PNG", icc_profile=profile)
    return out.getvalue()


def _load_recording(source):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_image(source)
    return loaded.rgb, [str(w.message) for w in caught if issubclass(w.category, ConversionWarning)]


def test_a_wide_gamut_profile_is_converted_to_srgb_with_a_warning():
    rgb, said = _load_recording(_png_with_profile((200, 100, 50), rgb_profile("Display P3 (test)", *P3)))
    assert said == ["colours converted from the ICC profile 'Display P3 (test)' to sRGB"]
    assert rgb[0, 0, 0] > 205 and rgb[0, 0, 2] < 40  # P3's orange is more saturated than sRGB's (200, 100, 50)


def test_srgb_and_unreadable_profiles_leave_the_pixels_alone():
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    rgb, said = _load_recording(_png_with_profile((200, 100, 50), srgb))
    assert said == [] and tuple(rgb[0, 0]) == (200, 100, 50)
    rgb, said = _load_recording(_png_with_profile((200, 100, 50), b"not a profile" * 20))
    assert tuple(rgb[0, 0]) == (200, 100, 50) and len(said) == 1 and said[0].startswith("unreadable ICC profile")


def test_sixteen_bit_samples_scale_to_eight_bits_without_bias():
    levels = np.arange(256, dtype=np.uint16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConversionWarning)
        gray = load_image((levels * 257).reshape(16, 16)).rgb[:, :, 0].reshape(-1)
        colour = load_image(np.repeat((levels * 257).reshape(16, 16, 1), 3, axis=2).astype(">u2")).rgb
        assert load_image(np.full((2, 2), 65535, np.uint16)).rgb.min() == 255
    assert np.array_equal(gray, np.arange(256))
    assert np.array_equal(colour[:, :, 1].reshape(-1), np.arange(256))


def test_boolean_colour_arrays_are_taken_like_boolean_gray_ones():
    mask = np.zeros((4, 4, 3), bool)
    mask[0] = True
    rgb = load_image(mask).rgb
    assert rgb[0].min() == 255 and rgb[1:].max() == 0


def test_a_closed_pil_image_is_one_line(photo):
    image = Image.fromarray(np.asarray(Image.open(photo)))
    image.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConversionWarning)  # no bogus EXIF warning on the way
        with pytest.raises(InputError, match="PIL image cannot be read"):
            codec.encode(image)


def test_concurrent_path_loads_leave_the_warning_filters_alone(photo):
    from concurrent.futures import ThreadPoolExecutor

    before = list(warnings.filters)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: load_image(photo, api.check_image_size), range(16)))
    assert warnings.filters == before


def test_numpy_integers_are_integers(photo, tiny_weights):
    plain = codec.encode(photo, model=str(tiny_weights), threads=1, tile=256)
    numpy = codec.encode(photo, model=str(tiny_weights), threads=np.int64(1), tile=np.int32(256),
                         effort=np.int8(0))
    assert plain == numpy


@pytest.mark.parametrize("quality, message", [(True, "must be a number"), ("3", "must be a number"),
                                              (10**400, "must be a number"), (6.0000001, "quality 6.0000001 outside"),
                                              (float("nan"), "outside the range")])
def test_bad_qualities_are_named(photo, tiny_weights, quality, message):
    with pytest.raises(InputError, match=message):
        codec.encode(photo, model=str(tiny_weights), quality=quality)


def test_a_size_target_too_large_for_a_float_is_one_line(photo, tiny_weights):
    with pytest.raises(InputError):
        codec.encode(photo, model=str(tiny_weights), size="9" * 400)


@pytest.mark.parametrize("x", [torch.zeros(1, 3, 1, 1).expand(1, 3, 20000, 20000), torch.zeros(1, 3, 8, 8).to_sparse(),
                               torch.zeros(1, 3, 8, 8, device="meta")])
def test_encode_tensor_refuses_tensors_it_cannot_read_cheaply(tiny_weights, x):
    with pytest.raises(InputError):
        api.encode_tensor(x, model=str(tiny_weights))


def test_encode_tensor_integer_parameters_must_be_a_bool(tiny_weights):
    with pytest.raises(InputError, match="integer_parameters"):
        api.encode_tensor(torch.zeros(1, 3, 8, 8), model=str(tiny_weights), integer_parameters="no")


def test_decode_png_wants_a_binary_file(tiny_weights, photo):
    data = codec.encode(photo, model=str(tiny_weights))
    for wrong in ("out.png", io.StringIO()):
        with pytest.raises(InputError, match="binary file"):
            api.decode_png(data, wrong, model=str(tiny_weights))


def test_bd_rate_refuses_curves_of_unequal_lengths():
    from codec.evaluation.bd import bd_rate

    with pytest.raises(ValueError, match="one distortion per rate"):
        bd_rate([0.1, 0.2, 0.4], [30, 32], [0.1, 0.2], [30, 32])


def test_paths_that_are_not_image_files_are_named_for_what_they_are(tmp_path):
    with pytest.raises(InputError, match="is a folder"):
        codec.encode(str(tmp_path))
    if os.path.exists("/dev/zero"):
        with pytest.raises(InputError, match="not a regular file"):
            codec.encode("/dev/zero")
    with pytest.raises(InputError, match="no such file"):
        codec.encode(str(tmp_path / "missing.png"))


def test_decode_of_text_that_is_not_a_path_does_not_echo_it():
    with pytest.raises(InputError, match="got a str: read the file in binary mode") as caught:
        codec.decode("\x89LIC\x02" + "\x00garbage" * 100)
    assert "garbage" not in str(caught.value)


def test_the_same_weights_always_make_the_same_file(tmp_path, tiny_weights):
    """The file's hash names the weights in every bitstream: two exports of one model must be one file."""
    from codec.models.weights import load_weights, save_weights

    model, entry = load_weights(tiny_weights), zoo.describe(tiny_weights)
    extra = {f"key{i}": i for i in range(12)}  # safetensors writes metadata keys in a random order
    hashes = {save_weights(model, tmp_path / f"w{i}.safetensors", "walloc", entry.config, extra) for i in range(4)}
    assert len(hashes) == 1
    assert (tmp_path / "w0.safetensors").read_bytes() == (tmp_path / "w3.safetensors").read_bytes()
