"Tests of radiomicnet.data.duplicates: the detector on known answers (synthetic always, genuine images with data), the committed pairs, test_dedup."
import io
from types import SimpleNamespace
import numpy as np, pandas as pd, pytest
import imagehash
from PIL import Image
from radiomicnet.data.images import read_image, synthetic_pair
from radiomicnet.data.datasets import DATASETS, load_split, read_split_file
from radiomicnet.data.duplicates import (DUP_RULES, NEAR_DUP_COLUMNS, TEST_SETS, PairScores, borderline_pairs, correlations, dataset_scores,
                                    dedup_counts, dedup_test_ids, dup_rule, hash_distances, is_near_duplicate, label_conflicts,
                                    near_duplicates, near_duplicates_csv, near_duplicates_path, pair_scores, phash_bits,
                                    read_near_duplicates, thumbnail, write_near_duplicates)

REAL = tuple(DATASETS)


# ---------------------------------------------------------------- helpers
def jpeg(a, quality=75):
    buf = io.BytesIO(); Image.fromarray(a).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))

def shift(a, dy=3, dx=2):
    "The image moved up by dy and left by dx pixels, the edge repeated into the gap."
    return np.pad(a[dy:, dx:], ((0, dy), (0, dx), (0, 0)), mode="edge")

def sample(id, image, mask=None, split="train", label="lesion"):
    return SimpleNamespace(id=id, split=split, label=label, load=lambda: (image, mask))

def pair_set(pairs): return set(zip(pairs.id_a, pairs.id_b)) | set(zip(pairs.id_b, pairs.id_a))

def partners(pairs, id): return {b for a, b in pair_set(pairs) if a == id}


# ---------------------------------------------------------------- the measures, against independent computations
def test_thumbnail_is_itu_luma_and_keeps_layout():
    red = np.zeros((40, 60, 3), np.uint8); red[..., 0] = 255
    assert (thumbnail(red) == 76).all()                      # PIL's luma: 299/1000 of 255, truncated
    step = np.zeros((64, 64), np.uint8); step[:, 32:] = 200
    t = thumbnail(step)
    assert t.shape == (32, 32) and t.dtype == np.uint8 and t[:, :12].max() <= 3 and t[:, 20:].min() >= 197

def test_hash_of_the_copy_is_the_hash_of_the_image():
    imgs = [synthetic_pair(s, (80, 100))[0] for s in range(5)]
    bits = phash_bits(np.stack([thumbnail(a) for a in imgs]))
    assert (bits == np.stack([imagehash.phash(Image.fromarray(a)).hash.ravel() for a in imgs])).all()

def test_distances_and_correlations_match_one_pair_at_a_time():
    bits = np.random.default_rng(1).random((9, 64)) < 0.5
    assert (hash_distances(bits) == [[np.count_nonzero(x != y) for y in bits] for x in bits]).all()
    th = np.stack([thumbnail(synthetic_pair(s, 64)[0]) for s in range(6)])
    np.testing.assert_allclose(correlations(th), np.corrcoef(th.reshape(6, -1).astype(float)), atol=1e-12)
    np.testing.assert_allclose(correlations(np.stack([th[0], 255 - th[0]]))[0, 1], -1, atol=1e-3)

def test_rule_clauses():
    busi, kvasir = DUP_RULES["busi"], DUP_RULES["kvasir-seg"]
    assert is_near_duplicate([0, 12, 12, 14, 30, 30], [.99, .80, .79, .90, .94, .93], busi).tolist() == [True, True, False, False, True, False]
    assert is_near_duplicate([6, 6, 8, 20], [.93, .92, .95, .96], kvasir).tolist() == [True, False, False, True]
    assert dup_rule("synthetic") == dup_rule("folder") == busi


# ---------------------------------------------------------------- known answers on synthetic images (always run)
@pytest.fixture(scope="module")
def synthetic_scores():
    orig, mask = synthetic_pair(0, 256)
    other_mask = synthetic_pair(1, 256)[1]
    copies = {"copy": orig.copy(), "jpeg": jpeg(orig), "shifted": shift(orig), "other-mask": orig}
    samples = [sample("orig", orig, mask)] + [sample(k, a, other_mask, "test") for k, a in copies.items()]
    samples += [sample(f"distinct-{s}", *synthetic_pair(s, 256)) for s in range(2, 40)]
    return pair_scores(samples)

@pytest.mark.parametrize("dataset", REAL)
def test_synthetic_copies_found_and_distinct_images_not(synthetic_scores, dataset):
    found = near_duplicates(synthetic_scores, dup_rule(dataset))
    assert partners(found, "orig") == {"copy", "jpeg", "shifted", "other-mask"}
    assert not any(i.startswith("distinct") for i in set(found.id_a) | set(found.id_b)), found

def test_near_duplicates_table(synthetic_scores):
    found = near_duplicates(synthetic_scores)
    assert found.columns.tolist() == NEAR_DUP_COLUMNS
    five = ["orig", "copy", "jpeg", "shifted", "other-mask"]
    assert sorted(zip(found.id_a, found.id_b)) == sorted((a, b) for n, a in enumerate(five) for b in five[n+1:])  # every two of one image's five copies
    assert found.split_a.tolist() == ["train"]*4 + ["test"]*6 and (found.split_b == "test").all()
    order = {s.id: n for n, s in enumerate(synthetic_scores.samples)}
    assert all(order[a] < order[b] for a, b in zip(found.id_a, found.id_b))
    assert near_duplicates_csv(found).splitlines()[0] == ",".join(NEAR_DUP_COLUMNS)

def test_borderline_pairs_sit_on_both_sides():
    n = 5
    s = PairScores([SimpleNamespace(id=str(i), split="train", label="x") for i in range(n)], np.full((n, n), 40), np.full((n, n), .1))
    for (a, b), (d, c) in {(0, 1): (2, .99), (1, 2): (4, .85), (0, 2): (20, .95), (0, 3): (8, .7), (0, 4): (30, .5)}.items():
        s.dist[a, b] = s.dist[b, a] = d; s.corr[a, b] = s.corr[b, a] = c
    b = borderline_pairs(s, DUP_RULES["busi"], k=1)
    assert list(zip(b.side, b.id_a, b.id_b)) == [("paired", "1", "2"), ("paired", "0", "2"), ("not paired", "0", "3"), ("not paired", "0", "4")]


# ---------------------------------------------------------------- the committed pairs and test_dedup (package data: always run)
def test_public_names():
    assert TEST_SETS == ("test", "test_dedup")
    empty = read_near_duplicates("synthetic")
    assert empty.columns.tolist() == NEAR_DUP_COLUMNS and len(empty) == 0
    assert dedup_test_ids("synthetic") == [s.id for s in load_split("synthetic", "test")]
    assert label_conflicts("synthetic") == []

@pytest.mark.parametrize("dataset", REAL)
def test_committed_pairs_agree_with_the_split_file(dataset):
    pairs, split = read_near_duplicates(dataset), read_split_file(dataset).set_index("id")
    assert len(pairs) and pairs.columns.tolist() == NEAR_DUP_COLUMNS
    assert pairs.split_a.tolist() == split.split[pairs.id_a].tolist() and pairs.split_b.tolist() == split.split[pairs.id_b].tolist()
    assert pairs.class_a.tolist() == split["class"][pairs.id_a].tolist() and pairs.class_b.tolist() == split["class"][pairs.id_b].tolist()
    assert not pair_set(pairs) & {(i, i) for i in split.index} and not pairs.duplicated(["id_a", "id_b"]).any()
    assert is_near_duplicate(pairs.hash_dist, pairs["corr"], dup_rule(dataset)).all()

def test_known_busi_pairs_are_committed():
    pairs = read_near_duplicates("busi")
    assert ("benign (433)", "malignant (145)") in pair_set(pairs)            # byte-identical (SOURCES.md)
    assert {"benign (433)", "malignant (145)"} <= set(label_conflicts("busi"))
    assert label_conflicts("kvasir-seg") == []                                 # one class only

@pytest.mark.parametrize("dataset", REAL)
def test_dedup_test_ids_drop_exactly_the_test_images_with_a_twin_outside_test(dataset):
    table, pairs, kept = read_split_file(dataset), read_near_duplicates(dataset), dedup_test_ids(dataset)
    test = table[table.split == "test"].id.tolist()
    split = table.set_index("id").split
    leaking = {a for a, b in pair_set(pairs) if split[a] == "test" and split[b] != "test"}
    assert kept == [i for i in test if i not in leaking]                       # split-file order, nothing else dropped
    assert leaking and len(kept) < len(test)
    within_test = {a for a, b in pair_set(pairs) if split[a] == "test" and split[b] == "test"} - leaking
    assert within_test <= set(kept)                                            # a pair inside test removes nothing
    counts = dedup_counts(dataset)
    assert counts.loc["all", "test_dedup"] == len(kept) and counts.loc["all", "test"] == len(test)


# ---------------------------------------------------------------- the genuine images (skip without RADIOMICNET_DATA)
@pytest.fixture(scope="module")
def real_scores(data_dir):
    return {d: dataset_scores(d, data_dir) for d in REAL}

@pytest.mark.parametrize("dataset", REAL)
def test_committed_file_is_what_the_detector_finds(dataset, data_dir, real_scores, tmp_path):
    assert near_duplicates_csv(near_duplicates(real_scores[dataset], dup_rule(dataset))) == near_duplicates_path(dataset).read_text()
    if dataset == "kvasir-seg":   # the writer end to end, on the smaller data set
        assert write_near_duplicates(dataset, data_dir, tmp_path/"k.csv").read_text() == near_duplicates_path(dataset).read_text()

@pytest.mark.parametrize("dataset", REAL)
def test_no_image_of_test_dedup_has_a_twin_in_train_or_valid(dataset, real_scores):
    "An independent check of the committed file: the detector itself, on the images."
    s = real_scores[dataset]
    t = s.table
    twin = is_near_duplicate(s.dist, s.corr, dup_rule(dataset)) & ~np.eye(len(t), dtype=bool)
    kept = t.id.isin(dedup_test_ids(dataset)).values
    assert kept.sum() and not twin[kept][:, (t.split != "test").values].any()
    dropped = ((t.split == "test") & ~t.id.isin(dedup_test_ids(dataset))).values
    assert twin[dropped][:, (t.split != "test").values].any(axis=1).all()     # each dropped image has one

# Judged by eye (side by side, at full size): twins are one frame (re-cropped, with or without calipers) or consecutive
# frames of one sweep; not_twins are other lesions of the same class, or one lesion seen from another probe position.
KNOWN = {"busi": dict(twins=[("benign (433)", "malignant (145)"), ("benign (435)", "malignant (145)"), ("benign (61)", "benign (116)"),
                             ("malignant (3)", "malignant (9)"), ("normal (20)", "normal (132)"), ("benign (213)", "benign (253)")],
                      not_twins=[("malignant (50)", "malignant (177)"), ("malignant (72)", "malignant (177)"), ("benign (1)", "benign (2)"),
                                 ("benign (58)", "benign (430)"), ("benign (102)", "benign (121)"), ("benign (219)", "malignant (118)"),
                                 ("benign (354)", "malignant (79)")]),
         "kvasir-seg": dict(twins=[("cju3xhpvvimda0987ygrpzni2", "cju5bf6hxa6m50817rbwettgu"), ("cju5fydrud94708507vo6oy21", "cju7avvi51iox0817ym55y6tt"),
                                   ("cju76lsehyia10987u54vn8rb", "cju772304yw5t0818vbw8kkjf")],
                            not_twins=[("cju3umoh1geet0817cmpef5am", "cju7cp6dw244p0818gncdol4m"), ("cju1gi7jlwyld0835cdf6g6qz", "cju5uget8krjy0818kvywd0zu"),
                                       ("cju0tl3uz8blh0993wxvn7ly3", "cju2hugv9vget0799hhk7ksvg"), ("cju1b0y2e396p08558ois175d", "cju83kxitjv340987z09m0ezy")])}

@pytest.mark.parametrize("dataset", REAL)
def test_pairs_judged_by_eye(dataset, real_scores):
    found = pair_set(near_duplicates(real_scores[dataset], dup_rule(dataset)))
    assert [p for p in KNOWN[dataset]["twins"] if p not in found] == []
    assert [p for p in KNOWN[dataset]["not_twins"] if p in found] == []

@pytest.mark.parametrize("dataset", REAL)
def test_real_copies_are_found(dataset, data_dir):
    "A real image's exact copy, JPEG re-encoding, shifted copy and copy with another image's mask are all paired with it; "
    "two distinct scans of its class (far apart in the split file and judged distinct by eye) are not."
    samples = {s.id: s for s in load_split(dataset, data_dir=data_dir, include_normal=True)}
    a, b = KNOWN[dataset]["not_twins"][0]
    img, mask = samples[a].load()
    other_mask = samples[b].load()[1]
    other_mask = np.zeros_like(mask) if other_mask.shape != mask.shape else other_mask
    copies = {"copy": img.copy(), "jpeg": jpeg(img, 60), "shifted": shift(img, 4, 3), "other-mask": img}
    found = near_duplicates(pair_scores([samples[a], samples[b]] + [sample(k, c, other_mask, "test", samples[a].label) for k, c in copies.items()]),
                            dup_rule(dataset))
    assert partners(found, a) == set(copies)
    assert partners(found, b) == set()
