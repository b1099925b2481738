"""ADGAN.py's MRML code against the real MRML library (slicer-core behind the
fake slicer module, tests/python/fake_slicer.py): volumes in and out with an
oblique, anisotropic IJK-to-RAS, label maps and segmentations exported for
training and as brain masks, the map overlay, threshold to segmentation,
subject hierarchy placement and the segment's terminology."""

import importlib

import fake_slicer
import numpy as np
import pytest
import vtk
from ADGANLib import nifti
from ADGANLib.errors import AdganError


@pytest.fixture(scope="module")
def mrml():
    env, restore = fake_slicer.install()
    try:
        ADGAN = importlib.import_module("ADGAN")
        env.ADGAN = ADGAN
        env.slicer = importlib.import_module("slicer")
        env.logic = ADGAN.ADGANLogic()
        yield env
    finally:
        restore()


def oblique_ijk_to_ras():
    """Spacing 0.9 x 1.1 x 2.5, rotated 20 degrees about S, LPS-like flips, an origin."""
    a = np.deg2rad(20)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    m = np.eye(4)
    m[:3, :3] = np.diag([-1.0, -1.0, 1.0]) @ rot @ np.diag([0.9, 1.1, 2.5])
    m[:3, 3] = [12.5, -30.0, 7.25]
    return m


def add_volume(env, name, array, matrix=None, cls="vtkMRMLScalarVolumeNode"):
    node = env.scene.AddNewNodeByClass(cls, name)
    env.slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(array))
    env.logic.setIjkToRas(node, oblique_ijk_to_ras() if matrix is None else matrix)
    return node


SHAPE = (12, 20, 24)  # k, j, i


def lesion_segmentation(env, reference, hidden_second=True):
    """Two segments: a visible 'lesion' and a hidden 'edema', both small
    compared with the reference grid."""
    seg = env.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "lesions")
    seg.CreateDefaultDisplayNodes()
    seg.SetReferenceImageGeometryParameterFromVolumeNode(reference)
    a = np.zeros(SHAPE, np.uint8)
    a[4:6, 5:9, 10:13] = 1  # 2 * 4 * 3 = 24 voxels
    b = np.zeros(SHAPE, np.uint8)
    b[8:10, 12:14, 2:4] = 1  # 8 voxels
    for sid, arr in (("lesion", a), ("edema", b)):
        seg.GetSegmentation().AddEmptySegment(sid, sid, [1.0, 0.0, 0.0])
        env.slicer.util.updateSegmentBinaryLabelmapFromArray(arr, seg, sid, reference)
    if hidden_second:
        seg.GetDisplayNode().SetSegmentVisibility("edema", False)
    return seg, a | b


def test_volume_geometry_round_trip(mrml, tmp_path):
    """A volume exported for adgan carries its voxels and IJK-to-RAS; a map
    read back is placed on the input's geometry."""
    rng = np.random.default_rng(0)
    vol = add_volume(mrml, "t2", rng.random(SHAPE, dtype=np.float32))
    m = oblique_ijk_to_ras()
    assert vol.GetSpacing() == pytest.approx((0.9, 1.1, 2.5))
    assert mrml.logic.ijkToRas(vol) == pytest.approx(m)
    path = mrml.logic.exportVolume(vol, str(tmp_path / "t2.nii.gz"))
    img = nifti.read(path)
    assert np.array_equal(img.array, mrml.slicer.util.arrayFromVolume(vol))
    assert img.affine == pytest.approx(m, abs=1e-4)

    out = mrml.logic.makeMapVolume(vol, img.array * 2, show=False)
    assert out.GetSpacing() == pytest.approx(vol.GetSpacing())
    assert out.GetOrigin() == pytest.approx(vol.GetOrigin())
    assert mrml.logic.ijkToRas(out) == pytest.approx(m)
    assert np.array_equal(mrml.slicer.util.arrayFromVolume(out), img.array * 2)


def test_segmentation_as_lesion_label_exports_every_segment_on_the_grid(mrml, tmp_path):
    """Bug 1 of issue #11: a segmentation as a training case's lesion label.
    Every segment counts (a hidden one too), on the reference volume's grid."""
    ref = add_volume(mrml, "flair", np.ones(SHAPE, np.float32))
    seg, expected = lesion_segmentation(mrml, ref)
    path = mrml.logic.exportVolume(seg, str(tmp_path / "label.nii.gz"), referenceNode=ref, label=True)
    img = nifti.read(path)
    assert img.array.shape == SHAPE
    assert img.affine == pytest.approx(oblique_ijk_to_ras(), abs=1e-4)
    assert int(img.array.sum()) == int(expected.sum()) == 32
    assert np.array_equal(img.array != 0, expected != 0)


def test_segmentation_as_brain_mask(mrml):
    ref = add_volume(mrml, "flair2", np.ones(SHAPE, np.float32))
    seg, expected = lesion_segmentation(mrml, ref)
    mask = mrml.logic.maskArray(seg, ref)
    assert mask.shape == SHAPE and np.array_equal(mask, expected)


def test_brain_mask_selector_lists_segmentations(mrml):
    """The panel's mask selector (built from ADGAN.ui) offers segmentations,
    label maps and scalar volumes."""
    ui = fake_slicer.load_ui(fake_slicer.os.path.join(
        fake_slicer.os.path.dirname(mrml.ADGAN.__file__), "Resources", "UI", "ADGAN.ui"))
    selector = ui["brainMaskSelector"]
    selector.setMRMLScene(mrml.scene)
    for cls in ("vtkMRMLSegmentationNode", "vtkMRMLLabelMapVolumeNode", "vtkMRMLScalarVolumeNode"):
        node = mrml.scene.AddNewNodeByClass(cls, "mask " + cls)
        selector.setCurrentNode(node)
        assert selector.currentNode() is node, cls


def in_study(env, node, study_name="Study 1"):
    sh = env.subject_hierarchy
    patient = sh.CreateSubjectItem(sh.GetSceneItemID(), "Patient " + study_name)
    study = sh.CreateStudyItem(patient, study_name)
    sh.SetItemParent(sh.GetItemByDataNode(node), study)
    return study


def test_map_overlay_threshold_segmentation_and_study(mrml):
    """A map volume and its thresholded segmentation: on the input geometry,
    shown as the foreground over the input, in the input's study, the segment
    tagged with its terminology."""
    slicer = mrml.slicer
    rng = np.random.default_rng(1)
    vol = add_volume(mrml, "case flair", rng.random(SHAPE, dtype=np.float32))
    study = in_study(mrml, vol)
    red = mrml.scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode")
    score_map = np.zeros(SHAPE, np.float32)
    score_map[3:7, 5:10, 6:12] = 5.0  # 4 * 5 * 6 = 120 voxels
    score_map[0, 0, 0] = 2.0

    map_node = mrml.logic.makeMapVolume(vol, score_map, threshold=3.0, show=True)
    assert red.GetBackgroundVolumeID() == vol.GetID() and red.GetForegroundVolumeID() == map_node.GetID()
    assert red.GetForegroundOpacity() == pytest.approx(0.6)
    display = map_node.GetDisplayNode()
    assert display.GetApplyThreshold() and display.GetLowerThreshold() <= 3.0
    sh = mrml.subject_hierarchy
    assert sh.GetItemParent(sh.GetItemByDataNode(map_node)) == study

    seg, stats = mrml.logic.updateSegmentation(map_node, None, 3.0, referenceNode=vol)
    assert stats["voxels"] == 120
    assert stats["volume_ml"] == pytest.approx(120 * 0.9 * 1.1 * 2.5 / 1000)
    labels = slicer.util.arrayFromSegmentBinaryLabelmap(seg, mrml.ADGAN.SEGMENT_ID, vol)
    assert labels.shape == SHAPE and np.array_equal(labels != 0, score_map >= 3.0)
    assert sh.GetItemParent(sh.GetItemByDataNode(seg)) == study
    segment = seg.GetSegmentation().GetSegment(mrml.ADGAN.SEGMENT_ID)
    ref = vtk.reference("")
    assert segment.GetTag(segment.GetTerminologyEntryTagName(), ref)
    tag = str(ref)
    assert tag == mrml.ADGAN.SEGMENT_TERMINOLOGY
    entry = slicer.vtkSlicerTerminologyEntry()
    assert mrml.terminologies.DeserializeTerminologyEntry(tag, entry)
    assert entry.GetCategoryObject().GetCodeValue() == "49755003"
    assert entry.GetCategoryObject().GetCodeMeaning() == "Morphologically Altered Structure"
    assert entry.GetTypeObject().GetCodingSchemeDesignator() == "SCT"
    assert entry.GetAnatomicRegionObject().GetCodeMeaning() == "Brain"

    again, stats = mrml.logic.updateSegmentation(map_node, seg, 6.0)
    assert again is seg and stats["voxels"] == 0
    assert slicer.util.arrayFromSegmentBinaryLabelmap(seg, mrml.ADGAN.SEGMENT_ID, vol).sum() == 0

    # A chosen output volume stays where the user put it.
    other = mrml.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "my map")
    mrml.logic.makeMapVolume(vol, score_map, outputNode=other, show=False)
    assert sh.GetItemParent(sh.GetItemByDataNode(other)) == sh.GetSceneItemID()


def test_grid_errors(mrml):
    vol = add_volume(mrml, "a", np.ones(SHAPE, np.float32))
    moved = oblique_ijk_to_ras()
    moved[0, 3] += 3
    other = add_volume(mrml, "moved", np.ones(SHAPE, np.float32), moved)
    with pytest.raises(AdganError, match="moved and a are not on the same voxel grid"):
        mrml.logic.volumeArrays([vol, other])
    small = add_volume(mrml, "small mask", np.ones((2, 2, 2), np.uint8), cls="vtkMRMLLabelMapVolumeNode")
    with pytest.raises(AdganError, match="not on the same voxel grid"):
        mrml.logic.maskArray(small, vol)
    empty = mrml.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty")
    with pytest.raises(AdganError, match="empty has no voxels"):
        mrml.logic.volumeArrays([vol, empty])
