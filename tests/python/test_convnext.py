"""ConvNeXt-V2 encoders (docs/model.md, "ConvNeXt-V2 encoders") against a PyTorch reference
written here from the ConvNeXt-V2 paper (Woo et al., CVPR 2023, arXiv 2301.00808) and its
parameter names (facebookresearch/ConvNeXt-V2, models/convnextv2.py):

  - every tensor of the encoder a libmosaic model saves (enc.<m>.*) has a tensor of the
    reference's state_dict under the same name, with the same shape up to the documented
    dimensions of size 1 (pointwise [4C, C, 1, 1] vs nn.Linear's [4C, C], GRN's [C] vs
    [1, 1, 1, C]), and the reference has nothing else: for convnextv2_atto .. _nano built
    in C, for _tiny by the counts of the model's configuration;
  - the parameter counts of the five presets equal the reference's (and the paper's,
    less the 1000-class head, for 3 bands);
  - forward: the reference's random weights (GRN and LayerNorm parameters not at their
    initial values) loaded into a libmosaic model by msc_model_load as PyTorch shapes
    them, and by mosaic.weights.import_convnextv2: the features h_m agree to 1e-4."""

import pytest

import mosaic
from mosaic import weights

np = pytest.importorskip("numpy")
torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

PRESETS = {  # the paper's Table (widths "dims", depths)
    "convnextv2_atto": ((40, 80, 160, 320), (2, 2, 6, 2)),
    "convnextv2_femto": ((48, 96, 192, 384), (2, 2, 6, 2)),
    "convnextv2_pico": ((64, 128, 256, 512), (2, 2, 6, 2)),
    "convnextv2_nano": ((80, 160, 320, 640), (2, 2, 8, 2)),
    "convnextv2_tiny": ((96, 192, 384, 768), (3, 3, 9, 3)),
}
# Millions of parameters of the paper's ImageNet-1k models (3 bands, 1000-class head).
PAPER_M = {"convnextv2_atto": 3.7, "convnextv2_femto": 5.2, "convnextv2_pico": 9.1,
           "convnextv2_nano": 15.6, "convnextv2_tiny": 28.6}


# ---- the reference ----------------------------------------------------------------------

class NormC(nn.Module):
    """LayerNorm over the channels of an NCHW tensor ("channels_first", eps 1e-6)."""

    def __init__(self, c):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))

    def forward(self, x):
        return F.layer_norm(x.permute(0, 2, 3, 1), self.weight.shape, self.weight, self.bias,
                            1e-6).permute(0, 3, 1, 2)


class GRN(nn.Module):
    """Global Response Normalisation on channels-last x: the L2 norm of each channel over
    the positions, divided by its mean over the channels; gamma and beta (1, 1, 1, C)."""

    def __init__(self, c):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, c))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, c))

    def forward(self, x):
        g = torch.sqrt((x * x).sum(dim=(1, 2), keepdim=True))
        n = g / (g.mean(dim=3, keepdim=True) + 1e-6)
        return self.gamma * (x * n) + self.beta + x


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dwconv = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c, eps=1e-6)
        self.pwconv1 = nn.Linear(c, 4 * c)
        self.grn = GRN(4 * c)
        self.pwconv2 = nn.Linear(4 * c, c)

    def forward(self, x):  # inference: stochastic depth is the identity
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.grn(F.gelu(self.pwconv1(self.norm(y)))))
        return x + y.permute(0, 3, 1, 2)


class Encoder(nn.Module):
    """ConvNeXt-V2 without its head: stem (4x4 stride-4 conv, LN), stages separated by
    LN + 2x2 stride-2 convs, global average pooling, LayerNorm."""

    def __init__(self, bands, widths, depths):
        super().__init__()
        self.downsample_layers = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(bands, widths[0], 4, stride=4), NormC(widths[0]))])
        for a, b in zip(widths[:-1], widths[1:]):
            self.downsample_layers.append(nn.Sequential(NormC(a), nn.Conv2d(a, b, 2, stride=2)))
        self.stages = nn.ModuleList(
            [nn.Sequential(*[Block(w) for _ in range(d)]) for w, d in zip(widths, depths)])
        self.norm = nn.LayerNorm(widths[-1], eps=1e-6)

    def forward(self, x):
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        return self.norm(x.mean(dim=(2, 3)))


def randomised(net, seed):
    """Every parameter random (norm scales around 1, the rest around 0), so that a name
    mix-up or a transposition cannot go unnoticed."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            r = torch.randn(p.shape, generator=g)
            if p.dim() == 1 and name.endswith("weight"):  # the LayerNorms' scales
                p.copy_(1.0 + 0.2 * r)
            elif p.dim() >= 2 and "grn" not in name:
                fan_in = p[0].numel()
                p.copy_(r / fan_in ** 0.5)
            else:
                p.copy_(0.2 * r)
    return net.eval()


# ---- the libmosaic model ----------------------------------------------------------------

def model_opts(encoder, bands, size, **extra):
    o = {"modality.count": 1, "modality.0.name": "s2", "modality.0.bands": bands,
         "modality.0.size": size, "modality.0.encoder": encoder,
         "modality.0.mean": [0.0] * bands, "modality.0.std": [1.0] * bands,
         "classes": 3, "class_names": "a;b;c", "proj.dim": 8, "train.preset": "supervised",
         "seed": 5, "threads": 2}
    o.update(extra)
    return o


def encoder_tensors(model, tmp_path):
    path = tmp_path / "m.safetensors"
    model.save(path)
    t, _ = weights.read_safetensors(path)
    return {k[len("enc.s2."):]: shape for k, (_, shape, _) in t.items() if k.startswith("enc.s2.")}


def squeezed(shape):
    return tuple(d for d in shape if d != 1)


def torch_count(widths, depths, bands):
    return sum(p.numel() for p in Encoder(bands, widths, depths).parameters())


def count_formula(widths, depths, bands):
    """The encoder's parameters from its configuration (docs/model.md): stem conv + LN,
    per later stage LN + 2x2 conv, per block dwconv 7x7 (+bias), LN, pwconv1, GRN,
    pwconv2, and the final LN."""
    n = bands * widths[0] * 16 + widths[0] + 2 * widths[0]
    for s, (w, d) in enumerate(zip(widths, depths)):
        if s > 0:
            n += 2 * widths[s - 1] + widths[s - 1] * w * 4 + w
        n += d * (49 * w + w + 2 * w + (w * 4 * w + 4 * w) + 2 * 4 * w + (4 * w * w + w))
    return n + 2 * widths[-1]


@pytest.mark.parametrize("encoder", ["convnextv2_atto", "convnextv2_femto",
                                     "convnextv2_pico", "convnextv2_nano"])
def test_names_shapes_and_counts(encoder, tmp_path):
    widths, depths = PRESETS[encoder]
    bands = 4
    ref = {k: tuple(v.shape) for k, v in Encoder(bands, widths, depths).state_dict().items()}
    with mosaic.Model.create(model_opts(encoder, bands, 32)) as m:
        mine = encoder_tensors(m, tmp_path)
    assert sorted(mine) == sorted(ref)
    for name, shape in mine.items():
        want = ref[name]
        if shape != want:  # only the documented differences
            assert squeezed(shape) == squeezed(want), (name, shape, want)
            assert ("pwconv" in name and name.endswith(".weight") and shape[2:] == (1, 1)
                    or ".grn." in name and want[:3] == (1, 1, 1)), (name, shape, want)
    count = sum(int(np.prod(s)) for s in mine.values())
    assert count == sum(int(np.prod(s)) for s in ref.values())
    assert count == count_formula(widths, depths, bands)


@pytest.mark.parametrize("encoder", sorted(PRESETS))
def test_counts_against_the_paper(encoder):
    """The reference with 3 bands and the paper's 1000-class head (C·1000 + 1000) has
    the paper's size to the 0.1 M it reports; tiny's count without building it in C."""
    widths, depths = PRESETS[encoder]
    n = torch_count(widths, depths, 3)
    assert n == count_formula(widths, depths, 3)
    total = n + widths[-1] * 1000 + 1000
    assert abs(total / 1e6 - PAPER_M[encoder]) < 0.05 + 1e-9, (encoder, total)


def check_close(got, want, what):
    scale = float(np.abs(want).max())
    err = float(np.abs(got - want).max())
    assert err <= 1e-4 * max(scale, 1.0), "%s: max |diff| %g of max %g" % (what, err, scale)


@pytest.mark.parametrize("case", [
    ("convnextv2_atto", {}, 3, 32),
    ("convnextv2_atto", {"modality.0.widths": "8,16,24", "modality.0.depths": "1,2,1"}, 5, 40),
])
def test_forward_matches_the_reference(case, tmp_path):
    encoder, extra, bands, size = case
    with mosaic.Model.create(model_opts(encoder, bands, size, **extra)) as m:
        widths = tuple(int(v) for v in m.options()["modality.0.widths"].split(","))
        depths = tuple(int(v) for v in m.options()["modality.0.depths"].split(","))
        net = randomised(Encoder(bands, widths, depths), seed=11)
        sd = {k: v.detach().numpy() for k, v in net.state_dict().items()}
        x = np.random.default_rng(3).standard_normal((3, bands, size, size)).astype(np.float32)
        with torch.no_grad():
            want = net(torch.from_numpy(x)).numpy()
        # (1) msc_model_load takes the PyTorch shapes as they are: the model's own file
        # with every encoder tensor replaced by the state_dict's, unchanged.
        path = tmp_path / "m.safetensors"
        m.save(path)
        t, meta = weights.read_safetensors(path)
        for k in list(t):
            if k.startswith("enc.s2."):
                a = sd[k[len("enc.s2."):]].astype("<f4")
                t[k] = ("F32", tuple(a.shape), a.tobytes())
        assert t["enc.s2.stages.0.0.pwconv1.weight"][1] == (4 * widths[0], widths[0])
        assert t["enc.s2.stages.0.0.grn.gamma"][1] == (1, 1, 1, 4 * widths[0])
        weights.write_safetensors(path, t, meta)
        with mosaic.Model.load(path, threads=2) as m1:
            got = m1.embed(s2=x, kind="features", modality="s2")
        assert got.shape == (3, widths[-1])
        check_close(got, want, "msc_model_load")
        # (2) import_convnextv2 from a prefixed dict of torch tensors with a head
        prefixed = {"model." + k: v for k, v in net.state_dict().items()}
        prefixed["model.head.weight"] = torch.zeros(7, widths[-1])
        with weights.import_convnextv2(m, prefixed, "s2", threads=2) as m2:
            check_close(m2.embed(s2=x, kind="features", modality="s2"), want, "import")


def test_import_errors():
    widths, depths = (8, 16), (1, 1)
    net = Encoder(3, widths, depths)
    opts = model_opts("convnextv2_atto", 3, 32, **{"modality.0.widths": "8,16",
                                                    "modality.0.depths": "1,1"})
    with mosaic.Model.create(opts) as m:
        sd = dict(net.state_dict())
        del sd["stages.1.0.grn.beta"]
        with pytest.raises(mosaic.NotFoundError, match="stages.1.0.grn.beta"):
            weights.import_convnextv2(m, sd, "s2")
        with pytest.raises(mosaic.NotFoundError, match="downsample_layers.0.0.weight"):
            weights.import_convnextv2(m, {"norm.weight": net.norm.weight}, "s2")
        sd = dict(net.state_dict())
        sd["stages.0.0.pwconv1.weight"] = torch.zeros(8, 32)  # transposed: refused
        with pytest.raises(mosaic.ShapeError, match="pwconv1"):
            weights.import_convnextv2(m, sd, "s2")


def test_options_and_errors():
    with pytest.raises(mosaic.InvalidArgumentError, match="maxpool"):
        mosaic.Model.create(model_opts("convnextv2_atto", 3, 32, **{"modality.0.maxpool": 1}))
    with pytest.raises(mosaic.InvalidArgumentError, match="convnext"):
        mosaic.Model.create(model_opts("convnextv2_huge", 3, 32))
    with mosaic.Model.create(model_opts("convnextv2_femto", 3, 32)) as m:
        o = m.options()
        assert o["modality.0.block"] == "convnext"
        assert str(o["modality.0.stem_width"]) == "48"  # widths[0], whatever the key said


def test_learns_the_synthetic_benchmark(tmp_path):
    """A small ConvNeXt-V2 (the atto preset with widths 16,32 and one block per stage,
    for CI time) per modality, trained supervised (stochastic depth at its default 0.1)
    on 300 synthetic BigEarthNet patches (msc_synth_write) for 8 epochs of 16, reaches a
    macro AP on the test split far above chance (the mean class frequency, what scores
    unrelated to the labels average). Measured (docs/model.md, "ConvNeXt-V2 encoders"):
    0.705 with these seeds, 0.665 and 0.674 with two other data and model seeds, 0.713
    with train.drop_path = 0; chance about 0.11. ~20 s on 2 cores."""
    d = tmp_path / "ben"
    mosaic.synth_write(d, 300, seed=3)
    small = {"widths": "16,32", "depths": "1,1"}
    model = {"proj.dim": 16, "seed": 7}
    for i in (0, 1):
        model["modality.%d.encoder" % i] = "convnextv2_atto"
        for k, v in small.items():
            model["modality.%d.%s" % (i, k)] = v
    m = mosaic.train(d, split="train", epochs=8, batch_size=16, workers=1, model=model,
                     options={"train.preset": "supervised", "optim.lr": 0.01, "threads": 2})
    with m, mosaic.Dataset(d, split="test") as test:
        assert m.options()["modality.0.block"] == "convnext"
        ap = m.evaluate(test)["macro_ap"]
        with test.fill_batch(range(len(test))) as b:
            chance = float(np.asarray(b.labels, dtype=np.float64).mean())
    assert chance < 0.2
    assert ap >= 0.45, "macro AP %.3f (chance %.3f)" % (ap, chance)
