"One test over every registered model (timm's registry, `vl_` names): builds, forwards a batch, and has its card's parameter count."
import pytest, timm, torch
from visionlab_nb.core.registry import MODEL_CARDS, vl_models, count_params

MODELS = vl_models()

def test_models_are_registered():
    assert MODELS, "no vl_ model registered"
    assert all(m in MODEL_CARDS for m in MODELS), [m for m in MODELS if m not in MODEL_CARDS]

@pytest.mark.parametrize("name", MODELS)
def test_model_builds_forwards_and_counts(name):
    model = timm.create_model(name).eval()
    card = MODEL_CARDS[name]
    if card.params is not None: assert count_params(model) == card.params
    size = model.pretrained_cfg["input_size"]
    with torch.no_grad():
        feats = model.forward_features(torch.randn(2, *size))
        assert isinstance(feats, torch.Tensor)
        out = model.forward_head(feats)
    assert out.shape == (2, model.num_classes)
    model.reset_classifier(3)
    with torch.no_grad(): assert model(torch.randn(1, *size)).shape == (1, 3)
