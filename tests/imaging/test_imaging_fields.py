"""Finding fields and reading channels: tokens, patterns, LoadData, stacks, bad input."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest
import tifffile
import zarr

from phenoseq.errors import InputError
from phenoseq.imaging.fields import (
    CHANNELS,
    discover_fields,
    fields_from_loaddata,
    parse_channel_map,
    read_field,
    read_plane,
)

CMAP = "DNA=ch5,ER=ch2,RNA=ch6,AGP=ch3,Mito=ch4"
TOKENS = {"DNA": "ch5", "ER": "ch2", "RNA": "ch6", "AGP": "ch3", "Mito": "ch4"}


def write_opera(folder, rows=((3, 3, 1),), dtype=np.uint16, compression="lzw"):
    """Opera-style names r03c03f01p01-ch5sk1fk1fl1.tiff; each plane a constant = channel index."""
    folder.mkdir(parents=True, exist_ok=True)
    for r, c, f in rows:
        for k, ch in enumerate(CHANNELS):
            img = np.full((16, 20), (k + 1) * 1000, dtype)
            name = f"r{r:02d}c{c:02d}f{f:02d}p01-{TOKENS[ch]}sk1fk1fl1.tiff"
            tifffile.imwrite(folder / name, img, compression=compression)
    return folder


def test_parse_channel_map_accepts_any_case_and_rejects_bad_maps():
    assert parse_channel_map("dna=a,er=b,rna=c,agp=d,mito=e") == dict(
        zip(CHANNELS, "abcde", strict=True)
    )
    with pytest.raises(InputError, match="lacks channel.*Mito"):
        parse_channel_map("DNA=a,ER=b,RNA=c,AGP=d")
    with pytest.raises(InputError, match="unknown channel 'Actin'"):
        parse_channel_map("DNA=a,ER=b,RNA=c,AGP=d,Mito=e,Actin=f")
    with pytest.raises(InputError, match="twice"):
        parse_channel_map("DNA=a,DNA=b,ER=b,RNA=c,AGP=d,Mito=e")
    with pytest.raises(InputError, match="not NAME=TOKEN"):
        parse_channel_map("DNA,ER=b")


def test_compressed_16bit_tiffs_group_into_fields_with_pattern_metadata(tmp_path):
    write_opera(tmp_path, rows=((3, 3, 1), (3, 3, 2), (2, 11, 1)))
    fields = discover_fields(tmp_path, CMAP, r"r(?P<row>\d+)c(?P<col>\d+)f(?P<site>\d+)")
    assert sorted(f.name for f in fields) == ["B11_01", "C03_01", "C03_02"]
    img = read_field(fields[0])
    assert img.shape == (5, 16, 20) and img.dtype == np.float32
    # channel k holds (k+1)*1000 / 65535 whatever the order of the tokens in the file names
    np.testing.assert_allclose(img[:, 0, 0], np.arange(1, 6) * 1000 / 65535, rtol=1e-6)


def test_fields_group_by_name_without_a_pattern(tmp_path):
    write_opera(tmp_path, rows=((3, 3, 1), (3, 3, 2)))
    fields = discover_fields(tmp_path, CMAP)
    assert len(fields) == 2 and len({f.name for f in fields}) == 2


def test_png_8bit_is_scaled_by_its_own_maximum(tmp_path):
    for k, ch in enumerate(CHANNELS):
        iio.imwrite(tmp_path / f"well_A01_s1_{ch.lower()}.png", np.full((8, 8), 51 * k, np.uint8))
    fields = discover_fields(tmp_path, "DNA=_dna,ER=_er,RNA=_rna,AGP=_agp,Mito=_mito")
    np.testing.assert_allclose(read_field(fields[0])[:, 0, 0], np.arange(5) * 51 / 255)


def test_ambiguous_and_missing_channels_are_clear_errors(tmp_path):
    write_opera(tmp_path)
    (tmp_path / "r03c03f01p01-ch5sk1fk1fl1.png").write_bytes(b"")  # a second DNA candidate
    with pytest.raises(InputError, match="do not group into complete fields.*DNA 2"):
        discover_fields(tmp_path, CMAP)
    pattern = r"r(?P<row>\d+)c(?P<col>\d+)f(?P<site>\d+)"
    with pytest.raises(InputError, match="channel DNA is ambiguous"):
        discover_fields(tmp_path, CMAP, pattern)
    (tmp_path / "r03c03f01p01-ch5sk1fk1fl1.png").unlink()
    with pytest.raises(InputError, match=r"no file name matches .*Mito \(Mito=ch9\)"):
        discover_fields(tmp_path, CMAP.replace("ch4", "ch9"), pattern)
    with pytest.raises(InputError, match="matches the tokens of"):
        discover_fields(tmp_path, CMAP.replace("ch4", "ch"), pattern)


def test_corrupt_and_wrong_shape_files_are_named(tmp_path):
    bad = tmp_path / "x.tiff"
    bad.write_bytes(b"II*\x00garbage")
    with pytest.raises(InputError, match="x.tiff: (cannot be read as an image|holds no image)"):
        read_plane((str(bad), None))
    (tmp_path / "y.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    with pytest.raises(InputError, match="y.png: cannot be read as an image"):
        read_plane((str(tmp_path / "y.png"), None))
    rgb = tmp_path / "rgb.tiff"
    tifffile.imwrite(rgb, np.zeros((8, 8, 3), np.uint8), photometric="rgb")
    with pytest.raises(InputError, match="RGB image"):
        read_plane((str(rgb), None))


def test_multichannel_tiff_and_zarr_stacks_use_integer_tokens(tmp_path):
    stack = np.stack([np.full((8, 8), k * 100, np.uint16) for k in range(6)])
    tifffile.imwrite(tmp_path / "A01_s1.tiff", stack)
    fields = discover_fields(tmp_path / "A01_s1.tiff", "DNA=4,ER=1,RNA=5,AGP=2,Mito=3")
    np.testing.assert_allclose(read_field(fields[0])[:, 0, 0] * 65535, [400, 100, 500, 200, 300])
    arr = zarr.create_array(store=str(tmp_path / "f.zarr"), shape=(2, 5, 8, 8), dtype="uint8")
    arr[:] = np.arange(2 * 5).reshape(2, 5, 1, 1).astype(np.uint8)
    fields = discover_fields(tmp_path / "f.zarr", "DNA=0,ER=1,RNA=2,AGP=3,Mito=4")
    assert len(fields) == 2
    np.testing.assert_allclose(read_field(fields[1])[:, 0, 0] * 255, [5, 6, 7, 8, 9])
    with pytest.raises(InputError, match="out of range"):
        read_field(discover_fields(tmp_path / "A01_s1.tiff", "DNA=9,ER=1,RNA=5,AGP=2,Mito=3")[0])


def test_loaddata_csv_gives_fields_and_metadata(tmp_path):
    write_opera(tmp_path / "img")
    rows = {"Metadata_Plate": ["P1"], "Metadata_Well": ["C03"], "Metadata_Site": [1]}
    for ch in CHANNELS:
        rows[f"FileName_Orig{ch}"] = [f"r03c03f01p01-{TOKENS[ch]}sk1fk1fl1.tiff"]
        rows[f"PathName_Orig{ch}"] = ["img"]  # relative to the CSV
    pd.DataFrame(rows).to_csv(tmp_path / "load_data.csv", index=False)
    fields = fields_from_loaddata(tmp_path / "load_data.csv")
    assert fields[0].metadata == {"plate": "P1", "well": "C03", "site": "1"}
    np.testing.assert_allclose(read_field(fields[0])[:, 0, 0], np.arange(1, 6) * 1000 / 65535,
                               rtol=1e-6)  # fmt: skip
    pd.DataFrame(rows).drop(columns=["FileName_OrigMito"]).to_csv(tmp_path / "bad.csv")
    with pytest.raises(InputError, match="0 columns for channel Mito"):
        fields_from_loaddata(tmp_path / "bad.csv")


def test_a_pattern_that_matches_no_file_is_named(tmp_path):
    write_opera(tmp_path)
    with pytest.raises(InputError, match="match a channel token but not --pattern"):
        discover_fields(tmp_path, CMAP, r"(?P<plate>BR\d+)_(?P<well>[A-P]\d\d)")
