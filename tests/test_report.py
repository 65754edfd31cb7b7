"Per-lesion report against independent computations: a brute-force masked GLCM, numpy/scipy statistics, scipy's labelling on real BUSI and Kvasir-SEG masks."
import math
import numpy as np, pandas as pd, pytest
from scipy import ndimage, stats
from radiomicnet.data.datasets import DATASETS, load_split
from radiomicnet.features import GLCM_ANGLES, GLCM_DISTANCES, glcm_offsets, to_gray_uint8
from radiomicnet.infer.report import first_order_features, lesion_columns, lesion_report, masked_glcm_features

def brute_force_glcm(gray, mask):
    "Contrast, homogeneity, energy, correlation of the pairs inside `mask`, one offset at a time with plain loops over pixels."
    q, (h, w), results = gray // 4, gray.shape, []
    for dr, dc in glcm_offsets(GLCM_DISTANCES, GLCM_ANGLES):
        P = np.zeros((64, 64))
        for r in range(h):
            for c in range(w):
                r2, c2 = r + dr, c + dc
                if 0 <= r2 < h and 0 <= c2 < w and mask[r, c] and mask[r2, c2]:
                    P[q[r, c], q[r2, c2]] += 1; P[q[r2, c2], q[r, c]] += 1
        if P.sum() == 0: continue
        P /= P.sum()
        i, j = np.indices(P.shape)
        mi, mj = (i * P).sum(), (j * P).sum()
        si, sj = np.sqrt(((i - mi)**2 * P).sum()), np.sqrt(((j - mj)**2 * P).sum())
        corr = 1.0 if si < 1e-15 or sj < 1e-15 else ((i - mi) * (j - mj) * P).sum() / (si * sj)
        results.append([((i - j)**2 * P).sum(), (P / (1 + (i - j)**2)).sum(), np.sqrt((P**2).sum()), corr])
    return np.mean(results, axis=0)

@pytest.mark.parametrize("seed", range(4))
def test_masked_glcm_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    gray = rng.integers(0, 256, (17, 13)).astype(np.uint8)
    mask = ndimage.binary_opening(rng.random((17, 13)) < 0.7)
    np.testing.assert_allclose(list(masked_glcm_features(gray, mask).values()), brute_force_glcm(gray, mask), rtol=1e-10)

def test_first_order_matches_numpy_and_scipy():
    v = np.random.default_rng(0).integers(0, 256, 500)
    fo = first_order_features(v)
    p = np.bincount(v // 4, minlength=64) / v.size
    np.testing.assert_allclose([fo[k] for k in ("mean", "median", "std", "skewness", "kurtosis", "energy", "entropy", "p10", "p90")],
                               [v.mean(), np.median(v), v.std(), stats.skew(v), stats.kurtosis(v), (v.astype(float)**2).sum(),
                                stats.entropy(p, base=2), np.percentile(v, 10), np.percentile(v, 90)], rtol=1e-12)

@pytest.mark.parametrize("dataset", list(DATASETS))
def test_real_masks_against_scipy_labelling(dataset, data_dir):
    "On ground-truth masks of the genuine data: lesions are scipy's 8-connected components of >= 16 px, with their pixel statistics."
    for s in load_split(dataset, "test", data_dir, subset=3):
        image, mask = s.load()
        gray = to_gray_uint8(image)
        rep = lesion_report(image, mask, mask.astype(float), image_features=np.zeros(13), gates=[0.5] * 4)
        labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
        sizes = ndimage.sum(mask, labels, range(1, n + 1))
        kept = [k + 1 for k in range(n) if sizes[k] >= 16]
        assert sorted(rep.area) == sorted(sizes[k - 1] for k in kept), s.id
        assert sorted(rep.lesion_mean.round(9)) == sorted(round(float(gray[labels == k].mean()), 9) for k in kept)
        assert (rep.mean_probability == 1).all() and ((rep.circularity > 0) & (rep.circularity < 1.2)).all()
        assert ((rep.solidity > 0) & (rep.solidity <= 1)).all() and (rep.minor_axis <= rep.major_axis).all()
        assert list(rep.columns) == lesion_columns(4) and rep.drop(columns=["unit", "spacing_mm"]).notna().all().all()
        mm = lesion_report(image, mask, spacing=0.25)
        np.testing.assert_allclose(mm.area, rep.area / 16); np.testing.assert_allclose(mm.equivalent_diameter, rep.equivalent_diameter / 4)
