"DICOM in and out on the genuine images: Kvasir-SEG and BUSI written as ultrasound DICOM files (in tmp_path), read back, segmented as SEG."
import highdicom
import numpy as np
import pytest
from radiomicnet.data.images import read_image, read_mask
from radiomicnet.data.dicom import is_dicom, read_dicom, write_dicom_seg, write_test_dicom

def kvasir_pair(data_dir):
    "The first Kvasir-SEG image and its mask (thresholded at 128, as the data loader does)."
    image_file = sorted((data_dir/"Kvasir-SEG"/"images").glob("*.jpg"))[0]
    image = read_image(image_file)
    return image, read_mask([data_dir/"Kvasir-SEG"/"masks"/image_file.name], image.shape[:2], threshold=128)

def test_kvasir_cine_loop_reads_back_three_frames_at_its_rate(data_dir, tmp_path):
    image, _ = kvasir_pair(data_dir)
    loop = [image, image[:, ::-1], image[::-1]]
    path = write_test_dicom(tmp_path/"IM000001", loop, spacing_mm=0.2, ultrasound_regions=True, rate=30)
    assert is_dicom(path)  # no suffix: found by its preamble
    dcm = read_dicom(path)
    assert dcm.multiframe and len(dcm.frames) == 3 and dcm.rate == pytest.approx(30)
    assert all(np.array_equal(got, want) for got, want in zip(dcm.frames, loop))
    assert dcm.spacing == pytest.approx((0.2, 0.2)) and dcm.spacing_note == "mm from the ultrasound region"

def test_seg_of_a_kvasir_cine_loop_references_its_source(data_dir, tmp_path):
    image, mask = kvasir_pair(data_dir)
    src = read_dicom(write_test_dicom(tmp_path/"kvasir.dcm", [image] * 3, rate=25))
    masks = np.stack([mask, np.zeros_like(mask), mask])
    seg = highdicom.seg.segread(write_dicom_seg(masks, src, tmp_path/"kvasir_seg.dcm", model="kvasir-seg"))
    assert seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == src.sop_uid
    assert seg.StudyInstanceUID == src.study_uid and seg.SeriesInstanceUID != src.series_uid
    assert np.array_equal(seg.get_pixels_by_source_frame(src.sop_uid, source_frame_numbers=[1, 2, 3])[..., 0], masks > 0)

def test_busi_image_round_trip_and_seg(data_dir, tmp_path):
    busi = data_dir/"BUSI"/"Dataset_BUSI_with_GT"/"malignant"
    image = read_image(busi/"malignant (1).png")
    mask = read_mask([busi/"malignant (1)_mask.png"], image.shape[:2])
    src = read_dicom(write_test_dicom(tmp_path/"busi.dcm", image, spacing_mm=0.08))
    assert np.array_equal(src.frames[0], image) and not src.multiframe
    assert src.spacing == pytest.approx((0.08, 0.08)) and src.spacing_note == "mm from PixelSpacing"
    seg = highdicom.seg.segread(write_dicom_seg(mask, tmp_path/"busi.dcm", tmp_path/"busi_seg.dcm", model="busi"))
    assert np.array_equal(seg.get_pixels_by_source_instance([src.sop_uid])[0, ..., 0], mask > 0)
