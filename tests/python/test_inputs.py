"""The model's input description (docs/model.md, "Inputs"): band names, scale and offset
from a dataset into a model (Model.band_names, Model.inputs) and through its file."""
import mosaic


def test_dataset_and_model_inputs(synth_dir, tmp_path):
    with mosaic.Dataset(synth_dir, split="all", s2_bands="B04,B03,B02") as ds:
        assert ds.band_names("s2") == ("B04", "B03", "B02")
        assert ds.band_names("s1") == ("VV", "VH")
        # Sentinel-2 digital numbers are reflectance x 10000; Sentinel-1 is in dB.
        assert abs(ds.band_scale("s2", 0)[0] - 1e-4) < 1e-15 and ds.band_scale("s2", 0)[1] == 0
        assert ds.band_scale("s1", 1) == (1.0, 0.0)
        opts = mosaic.Options.from_dataset(
            ds, {"modality.0.encoder": "tiny", "modality.1.encoder": "tiny"},
            stats="computed", stats_samples=8)
        with mosaic.Model.create(opts) as m:
            m.save(str(tmp_path / "m.safetensors"))
    with mosaic.Model.load(str(tmp_path / "m.safetensors")) as m:
        assert m.band_names("s2") == ("B04", "B03", "B02")
        ins = m.inputs("s2")
        assert [e["name"] for e in ins] == ["B04", "B03", "B02"]
        assert all(abs(e["scale"] - 1e-4) < 1e-11 and e["offset"] == 0 for e in ins)
        assert all(e["std"] > 0 for e in ins)


def test_model_without_names(tiny_model):
    assert tiny_model.band_names("s1") == (None, None)
    e = tiny_model.inputs("s1")[0]
    assert (e["scale"], e["offset"], e["mean"], e["std"]) == (1.0, 0.0, 0.0, 1.0)
