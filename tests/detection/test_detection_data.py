"""COCO-format data: the annotation checks, the dataset's targets, the transforms, the shapes set."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils

from epsanet.cli import main
from epsanet.detection import (
    SHAPES,
    AnnotationError,
    CocoDetection,
    detection_transforms,
    load_coco,
    make_shapes_dataset,
)


def write_json(path, data):
    path.write_text(json.dumps(data))
    return path


def minimal():
    return {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 40, "height": 30}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 3, 10, 5]}],
        "categories": [{"id": 1, "name": "thing"}],
    }


def broken(change):
    data = minimal()
    change(data)
    return data


MALFORMED = {
    "not_an_object": ([1, 2], "the top level is a JSON list"),
    "no_annotations": (broken(lambda d: d.pop("annotations")), "no 'annotations' list: not a COCO-format"),
    "short_bbox": (broken(lambda d: d["annotations"][0].update(bbox=[1, 2, 3])),
                   r"annotations\[0\] has bbox \[1, 2, 3\]: expected \[x, y, width, height\]"),
    "negative_bbox": (broken(lambda d: d["annotations"][0].update(bbox=[1, 2, -3, 4])), "negative width or height"),
    "unknown_image": (broken(lambda d: d["annotations"][0].update(image_id=7)),
                      r"annotations\[0\] refers to image id 7, which is not in 'images'"),
    "unknown_category": (broken(lambda d: d["annotations"][0].update(category_id=3)),
                         r"annotations\[0\] has category_id 3, which is not in 'categories'"),
    "no_file_name": (broken(lambda d: d["images"][0].pop("file_name")), r"images\[0\] has no 'file_name'"),
    "repeated_image": (broken(lambda d: d["images"].append(dict(d["images"][0]))), r"images\[1\] repeats image id 1"),
    "category_zero": (broken(lambda d: d["categories"][0].update(id=0)),
                      r"categories\[0\] has id 0: .*label 0 is the detectors' background"),
    "bad_polygon": (broken(lambda d: d["annotations"][0].update(segmentation=[[1, 2, 3]])),
                    r"annotations\[0\] has a polygon that is not a flat list"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_annotation_file_is_an_error_naming_the_file_and_the_problem(case, tmp_path):
    data, message = MALFORMED[case]
    path = write_json(tmp_path / "instances.json", data)
    with pytest.raises(AnnotationError, match=message) as info:
        load_coco(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_a_truncated_annotation_file_is_an_error_with_the_position(tmp_path):
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(minimal())[:50])
    with pytest.raises(AnnotationError, match=rf"{path} is not valid JSON \(.* at line 1 column \d+\)"):
        load_coco(path)


def test_a_mask_model_needs_a_segmentation_on_every_annotation(tmp_path):
    path = write_json(tmp_path / "instances.json", minimal())
    with pytest.raises(AnnotationError, match=r"annotations\[0\] has no 'segmentation': a mask model needs one"):
        load_coco(path, require_masks=True)
    assert load_coco(path).anns[1]["area"] == 50 and load_coco(path).anns[1]["iscrowd"] == 0


def test_the_train_command_reports_a_malformed_annotation_file_in_one_line(tmp_path, capsys, shapes):
    path = write_json(tmp_path / "instances.json", broken(lambda d: d["annotations"][0].pop("bbox")))
    code = main(["detect", "train", "--train-images", str(shapes["train"]["images"]), "--train-ann", str(path),
                 "--val-images", str(shapes["val"]["images"]), "--val-ann", str(shapes["val"]["annotations"])])
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"epsanet detect: error: {path}: annotations[0] has no 'bbox'\n"


def test_images_missing_from_the_folder_are_counted_and_named(tmp_path):
    path = write_json(tmp_path / "instances.json", minimal())
    with pytest.raises(FileNotFoundError, match=r"1 of the 1 images listed in .* are not in .* \(first: a.jpg\)"):
        CocoDetection(tmp_path, path)


def test_an_image_whose_size_differs_from_its_annotation_is_a_clear_error(tmp_path):
    Image.new("RGB", (41, 30)).save(tmp_path / "a.jpg")
    dataset = CocoDetection(tmp_path, write_json(tmp_path / "instances.json", minimal()))
    with pytest.raises(ValueError, match=r"a.jpg is 41x30 but .*instances.json says 40x30: fix the annotation"):
        dataset[0]


def test_a_corrupt_image_is_a_clear_error(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"not a jpeg")
    dataset = CocoDetection(tmp_path, write_json(tmp_path / "instances.json", minimal()))
    with pytest.raises(ValueError, match=r"cannot decode image .*a.jpg .*: the file is corrupt or not an image"):
        dataset[0]


def test_targets_are_xyxy_boxes_category_labels_and_the_annotated_masks(shapes):
    split = shapes["train"]
    dataset = CocoDetection(split["images"], split["annotations"], masks=True,
                            transforms=detection_transforms(train=False))
    image, target = dataset[0]
    anns = dataset.coco.imgToAnns[dataset.ids[0]]
    info = dataset.coco.imgs[dataset.ids[0]]
    assert image.dtype == torch.float32 and image.shape == (3, info["height"], info["width"])
    assert 0 <= image.min() and image.max() <= 1
    expected = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)])
    assert torch.equal(target["boxes"], expected)
    assert target["labels"].tolist() == [a["category_id"] for a in anns]
    assert [m.sum().item() for m in target["masks"]] == [a["area"] for a in anns]
    assert target["image_id"] == dataset.ids[0] and dataset.num_classes == 5


def test_crowd_annotations_are_left_out_of_the_targets(tmp_path, shapes):
    data = json.loads(shapes["train"]["annotations"].read_text())
    first_image = data["annotations"][0]["image_id"]
    data["annotations"][0]["iscrowd"] = 1
    path = write_json(tmp_path / "crowd.json", data)
    dataset = CocoDetection(shapes["train"]["images"], path)
    index = dataset.ids.index(first_image)
    all_boxes = len(dataset.coco.imgToAnns[first_image])
    assert len(dataset[index][1]["labels"]) == all_boxes - 1


def test_a_horizontal_flip_moves_boxes_and_masks_together(shapes):
    split = shapes["train"]
    plain = CocoDetection(split["images"], split["annotations"], masks=True, transforms=detection_transforms(False))
    flipped = CocoDetection(split["images"], split["annotations"], masks=True,
                            transforms=detection_transforms(True, hflip_prob=1.0))
    (image, target), (image_f, target_f) = plain[1], flipped[1]
    width = image.shape[-1]
    assert torch.equal(image_f, image.flip(-1))
    assert torch.equal(target_f["masks"], target["masks"].flip(-1))
    boxes = target["boxes"]
    assert torch.equal(target_f["boxes"], torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0],
                                                       boxes[:, 3]], 1))


def test_the_shapes_set_is_the_same_for_a_seed_and_differs_across_seeds(tmp_path):
    def make(name, seed):
        return make_shapes_dataset(tmp_path / name, train_images=3, val_images=2, image_size=(48, 64), seed=seed)

    a, b, c = make("a", 0), make("b", 0), make("c", 1)
    assert a["train"]["annotations"].read_bytes() == b["train"]["annotations"].read_bytes()
    assert (a["val"]["images"] / "000002.jpg").read_bytes() == (b["val"]["images"] / "000002.jpg").read_bytes()
    assert a["train"]["annotations"].read_bytes() != c["train"]["annotations"].read_bytes()


def test_shapes_annotations_are_the_visible_masks_with_their_tight_boxes_and_areas(shapes):
    coco = load_coco(shapes["val"]["annotations"], require_masks=True)
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(SHAPES)
    assert len(coco.imgs) == 4 and len(coco.anns) > 4
    for ann in coco.anns.values():
        mask = coco.annToMask(ann)
        ys, xs = np.nonzero(mask)
        assert ann["area"] == mask.sum() > 0
        assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        assert ann["bbox"] == list(mask_utils.toBbox(ann["segmentation"]))
    for _image_id, anns in coco.imgToAnns.items():
        masks = np.stack([coco.annToMask(a) for a in anns]) if anns else np.zeros((0, 1))
        assert (masks.sum(0) <= 1).all()  # visible parts never overlap


def test_the_shapes_command_writes_the_set_and_refuses_to_overwrite_by_default(tmp_path, capsys):
    args = ["detect", "shapes", str(tmp_path / "s"), "--train-images", "2", "--val-images", "1",
            "--image-size", "32", "40"]
    assert main(args) == 0
    assert (tmp_path / "s" / "annotations" / "instances_train.json").is_file()
    assert main(args) == 2
    assert "already exists: choose another folder, or replace it (--overwrite)" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0
