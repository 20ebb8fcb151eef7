"""FacesDataset: length, label order, file order, colour modes, transforms and clear errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from faces_dataset import FacesDataset
from helpers import make_split, write_image


@pytest.fixture
def split(tmp_path: Path) -> Path:
    """3 real + 2 fake PNGs written out of name order, plus stray non-image files."""
    rng = np.random.default_rng(0)
    for label, names in (('real', ['c.png', 'a.png', 'b.jpg']), ('fake', ['z.png', 'y.PNG'])):
        (tmp_path / label).mkdir()
        for name in names:
            write_image(tmp_path / label / name, rng, size=8)
    (tmp_path / 'real' / '.DS_Store').write_bytes(b'junk')
    (tmp_path / 'fake' / 'notes.txt').write_text('not an image')
    return tmp_path


def test_length_is_real_plus_fake(split: Path) -> None:
    assert len(FacesDataset(str(split))) == 5


def test_reals_come_first_with_label_0_in_sorted_order(split: Path) -> None:
    dataset = FacesDataset(str(split), transform=transforms.ToTensor())
    assert dataset.real_image_names == ['a.png', 'b.jpg', 'c.png']
    assert dataset.fake_image_names == ['y.PNG', 'z.png']
    labels = [dataset[i][1] for i in range(len(dataset))]
    assert labels == [0, 0, 0, 1, 1]
    assert all(type(label) is int for label in labels)


def test_item_is_the_file_on_disk_through_the_transform(split: Path) -> None:
    dataset = FacesDataset(str(split), transform=transforms.ToTensor())
    image, label = dataset[3]
    expected = np.asarray(Image.open(split / 'fake' / 'y.PNG').convert('RGB'), dtype=np.float32)
    assert isinstance(image, torch.Tensor) and image.shape == (3, 8, 8)
    assert torch.allclose(image, torch.from_numpy(expected / 255.0).permute(2, 0, 1))
    assert label == 1


def test_without_transform_returns_rgb_pil_image(split: Path) -> None:
    image, _ = FacesDataset(str(split))[0]
    assert isinstance(image, Image.Image) and image.mode == 'RGB'


@pytest.mark.parametrize('mode', ['L', 'RGBA', 'P', 'CMYK'])
def test_other_colour_modes_load_as_rgb(tmp_path: Path, mode: str) -> None:
    make_split(tmp_path, 0, 1, seed=1, size=8)
    write_image(tmp_path / 'fake' / 'odd.jpg' if mode == 'CMYK' else tmp_path / 'fake' / 'odd.png',
                np.random.default_rng(2), mode=mode, size=8)
    dataset = FacesDataset(str(tmp_path), transform=transforms.ToTensor())
    assert dataset.fake_image_names[-1].startswith('odd')
    image, label = dataset[len(dataset) - 1]
    assert image.shape == (3, 8, 8) and label == 1


@pytest.mark.parametrize('missing', ['real', 'fake'])
def test_missing_class_folder_names_the_path(tmp_path: Path, missing: str) -> None:
    make_split(tmp_path, 1, 1, seed=0, size=8)
    for path in (tmp_path / missing).iterdir():
        path.unlink()
    (tmp_path / missing).rmdir()
    with pytest.raises(FileNotFoundError, match=str(tmp_path / missing)):
        FacesDataset(str(tmp_path))


def test_empty_dataset_is_an_error(tmp_path: Path) -> None:
    (tmp_path / 'real').mkdir()
    (tmp_path / 'fake').mkdir()
    (tmp_path / 'fake' / 'readme.txt').write_text('no images here')
    with pytest.raises(ValueError, match='no images'):
        FacesDataset(str(tmp_path))


def test_index_out_of_range_names_the_dataset(split: Path) -> None:
    dataset = FacesDataset(str(split))
    with pytest.raises(IndexError, match='5 images'):
        dataset[5]
    with pytest.raises(IndexError):
        dataset[-1]


@pytest.mark.parametrize('content', [b'', b'this is not a png'])
def test_unreadable_image_names_the_file(split: Path, content: bytes) -> None:
    (split / 'fake' / 'z.png').write_bytes(content)
    dataset = FacesDataset(str(split))
    with pytest.raises(OSError, match=r'z\.png'):
        dataset[4]
