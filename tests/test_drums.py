"""Science tests of the drums series: the drumroll encoding, MIDI round trips, the groove generator and GMD loader,
the structural metrics, the GPT's cache and sampling. The generic series tests cover the overview and the reproduce notebook."""
import numpy as np
import pretty_midi
import pytest
import torch

from visionlab_nb.drums.drumroll import (VOICES, VOICE_PITCH, MERGE, encode, decode, midi_to_roll, roll_to_midi, split_prompt,
                                         text_to_midi)
from visionlab_nb.drums.grooves import STYLES, make_corpus, make_groove, fake_gmd, load_gmd
from visionlab_nb.drums.evaluate import (levenshtein, stability, random_roll, repeat_roll, two_cluster, is_valid, collapsed,
                                         duplication_rate, measure_table)
from visionlab_nb.drums.gpt import GPT, GPTConfig, generate


def _lev_reference(a, b):
    "Full-matrix Levenshtein distance."
    d = np.zeros((len(a) + 1, len(b) + 1), int); d[:, 0] = range(len(a) + 1); d[0, :] = range(len(b) + 1)
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (a[i - 1] != b[j - 1]))
    return d[-1, -1]


@pytest.mark.parametrize("n_steps", [16, 48, 256])
def test_encode_decode_encode_is_identity_on_the_grid(n_steps):
    rng = np.random.default_rng(n_steps)
    for p in (0.0, 0.2, 0.7, 1.0):
        roll = rng.random((n_steps, 6)) < p
        text = encode(roll)
        assert np.array_equal(decode(text), roll)
        assert encode(decode(text)) == text
        assert is_valid(text)
        assert text.count("SEP") == n_steps // 16 and text.endswith("\nEND")


def test_line_format_matches_the_paper():
    "`---oo-` is kick + hi-hat; columns crash, ride, snare, kick, hi-hat, tom."
    roll = np.zeros((16, 6), bool); roll[0, [3, 4]] = True
    assert encode(roll).split("\n")[0] == "---oo-"
    assert VOICES == ("crash", "ride", "snare", "kick", "hihat", "tom") and VOICE_PITCH == (49, 51, 38, 36, 42, 50)
    assert MERGE[37] == MERGE[40] == 2 and MERGE[53] == 1 and MERGE[46] == 4 and MERGE[43] == 5 and 44 not in MERGE


@pytest.mark.parametrize("bpm", [60, 97.5, 180])
def test_midi_round_trip_keeps_every_hit(tmp_path, bpm):
    g = make_groove("funk", n_measures=16, seed=int(bpm))
    path = tmp_path / "g.mid"
    roll_to_midi(g.roll, bpm=bpm).write(str(path))
    pm = pretty_midi.PrettyMIDI(str(path))
    assert sum(len(i.notes) for i in pm.instruments) == int(g.roll.sum())
    back = midi_to_roll(path)
    assert np.array_equal(back[:len(g.roll)], g.roll) and not back[len(g.roll):].any()
    assert np.array_equal(decode(text_to_midi(g.text) and g.text), g.roll)


def test_generated_grooves_are_valid_4_4_with_fills():
    corpus = make_corpus(120, n_measures=16, seed=7)
    assert {g.style for g in corpus} == set(STYLES)
    for g in corpus:
        assert g.roll.shape == (256, 6) and is_valid(g.text)
        for i in g.fills:                                    # a fill: toms or a snare run in the last beat(s), no timekeeping
            m = g.roll[16 * i:16 * (i + 1)]
            assert m[12:, 5].any() or m[12:, 2].sum() >= 2
            assert not m[12:, [1, 4]].any()
        for i in g.fills:                                    # a crash on the downbeat after a fill
            if i + 1 < g.n_measures: assert g.roll[16 * (i + 1), 0]
    assert np.mean([7 in g.fills and 15 in g.fills for g in corpus]) > 0.7


def test_gmd_loader_on_fabricated_files(tmp_path):
    fake_gmd(tmp_path, {"train": 4, "validation": 1, "test": 2}, n_measures=10, seed=3)
    assert (tmp_path / "groove" / "info.csv").read_text().startswith("drummer,session,id,style,bpm,beat_type,time_signature")
    d = load_gmd(tmp_path)
    assert {k: len(v) for k, v in d.items()} == {"train": 4, "validation": 1, "test": 2}   # 6/8 and the fill are dropped
    assert all(g.n_measures == 10 and g.roll[:16].any() for s in d.values() for g in s)    # leading silence stripped
    assert load_gmd(tmp_path, max_measures=9)["train"][0].n_measures == 9
    with pytest.raises(FileNotFoundError, match="info.csv"):
        load_gmd(tmp_path / "missing")


def test_levenshtein_matches_the_full_matrix():
    rng = np.random.default_rng(1)
    for _ in range(200):
        a = "".join(rng.choice(list("o-\n"), rng.integers(0, 30))); b = "".join(rng.choice(list("o-\n"), rng.integers(0, 30)))
        assert levenshtein(a, b) == _lev_reference(a, b)


def test_stability_of_repetition_is_zero_and_of_random_near_40():
    g = make_groove("rock", seed=0)
    assert stability(repeat_roll(g.roll)) == [0] * 14
    vals = [v for s in range(30) for v in stability(random_roll(16, np.random.default_rng(s)))]
    assert 38 < np.mean(vals) < 43                            # the paper's random baseline: 40.38
    assert np.mean(stability(g.roll)) < 10
    assert two_cluster(stability(repeat_roll(g.roll))) == (0.0, 0.0)


def test_collapse_duplication_validity():
    g = make_groove("disco", n_measures=8, seed=2)
    p, c = split_prompt(g.text)
    rep = encode(repeat_roll(g.roll)); rp, rc = split_prompt(rep)
    assert collapsed(rp, rc) and not collapsed(p, c)
    assert duplication_rate([g.roll], measure_table([g.roll])) == 1.0
    assert not is_valid(g.text[:-1]) and not is_valid(g.text.replace("SEP\n", "", 1))


def test_gpt_cache_equals_full_forward_and_sampling_is_seeded():
    torch.manual_seed(0)
    m = GPT(GPTConfig(ctx=64, d=32, n_layer=2, n_head=4)).eval()
    x = torch.randint(0, 256, (3, 50))
    full, _, _ = m(x)
    _, _, past = m(x[:, :20])
    for t in range(20, 50):
        lg, _, past = m(x[:, t:t + 1], past=past, pos0=t)
        torch.testing.assert_close(lg[:, 0], full[:, t], atol=1e-4, rtol=1e-4)
    a = generate(m, ["---oo-\n"] * 3, 100, temperature=0.9, seed=5)   # crosses the 64-byte context
    assert a == generate(m, ["---oo-\n"] * 3, 100, temperature=0.9, seed=5)
    assert all(len(t) <= 100 for t in a)
