"""The assignment's train_main.py written the plain way, as most public solutions are: the yardstick of
bench/bench_startup.py (run as a whole process beside ours).

PIL decoding per image with the assignment's transforms, DataLoader(num_workers=0), the model eager
in NCHW memory, Adam or SGD, each epoch train + validation + test with loss.item() per batch, the
best-validation weights saved with torch.save and the per-epoch log with json.dump. No atomic write,
no lock, no cache, no metrics beyond loss and accuracy. With $PHASES_FILE set it writes the time
(time.time()) at which each phase ended, for bench_startup.py's table.

    python bench/plain_train_main.py -d fakes_dataset -m SimpleNet --lr 0.001 -b 32 -e 1 -o Adam \\
        --data-root demo_datasets
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

PHASES = [('start', time.time())]


def phase(name: str) -> None:
    """Note that phase `name` ended now."""
    PHASES.append((name, time.time()))


import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402
from torchvision import transforms  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from models import SimpleNet  # noqa: E402  (the assignment's architecture, the same for both runs)

phase('imports')

NORMALIZE = transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
TRANSFORM_TRAIN = transforms.Compose([transforms.RandomCrop(256, padding=4),
                                      transforms.RandomHorizontalFlip(), transforms.ToTensor(), NORMALIZE])
TRANSFORM_TEST = transforms.Compose([transforms.ToTensor(), NORMALIZE])


class FacesDataset(Dataset):
    """real/ then fake/ PNGs of one split, decoded with PIL per item."""

    def __init__(self, root: Path, transform: transforms.Compose):
        self.transform = transform
        self.items = [(root / label / name, index) for index, label in enumerate(('real', 'fake'))
                      for name in sorted(os.listdir(root / label)) if name.endswith('.png')]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.items[index]
        return self.transform(Image.open(path).convert('RGB')), label


def run_epoch(model: nn.Module, loader: DataLoader, criterion: nn.Module,
              optimizer: torch.optim.Optimizer | None) -> tuple[float, float]:
    """One pass over `loader`, training when an optimizer is given: (mean loss, accuracy %)."""
    model.train(optimizer is not None)
    total_loss, correct, seen = 0.0, 0, 0
    with torch.set_grad_enabled(optimizer is not None):
        for inputs, targets in loader:
            outputs = model(inputs)
            loss = criterion(outputs, targets)
            if optimizer is not None:
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            total_loss += loss.item() * inputs.size(0)
            correct += (outputs.argmax(1) == targets).sum().item()
            seen += inputs.size(0)
    return total_loss / seen, 100 * correct / seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('-d', '--dataset', default='fakes_dataset')
    parser.add_argument('-m', '--model', default='SimpleNet', choices=['SimpleNet'])
    parser.add_argument('--lr', type=float, default=0.001)
    parser.add_argument('-b', '--batch_size', type=int, default=32)
    parser.add_argument('-e', '--epochs', type=int, default=1)
    parser.add_argument('-o', '--optimizer', default='Adam', choices=['Adam', 'SGD'])
    parser.add_argument('--data-root', type=Path, default=Path('.'))
    args = parser.parse_args()
    torch.manual_seed(0)
    root = args.data_root / args.dataset
    loaders = {part: DataLoader(FacesDataset(root / part, TRANSFORM_TRAIN if part == 'train'
                                             else TRANSFORM_TEST),
                                batch_size=args.batch_size, shuffle=part == 'train', num_workers=0)
               for part in ('train', 'val', 'test')}
    phase('data')
    model = SimpleNet()
    optimizer = (torch.optim.Adam(model.parameters(), lr=args.lr) if args.optimizer == 'Adam'
                 else torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9))
    criterion = nn.CrossEntropyLoss()
    phase('model')
    log, best = [], -1.0
    Path('checkpoints').mkdir(exist_ok=True)
    Path('out').mkdir(exist_ok=True)
    for epoch in range(1, args.epochs + 1):
        train_loss, train_acc = run_epoch(model, loaders['train'], criterion, optimizer)
        phase(f'epoch {epoch} train')
        val_loss, val_acc = run_epoch(model, loaders['val'], criterion, None)
        phase(f'epoch {epoch} val')
        test_loss, test_acc = run_epoch(model, loaders['test'], criterion, None)
        phase(f'epoch {epoch} test')
        print(f'Epoch {epoch} | train {train_loss:.3f} {train_acc:.2f}% | val {val_loss:.3f} {val_acc:.2f}% '
              f'| test {test_loss:.3f} {test_acc:.2f}%')
        log.append({'train_loss': train_loss, 'train_acc': train_acc, 'val_loss': val_loss,
                    'val_acc': val_acc, 'test_loss': test_loss, 'test_acc': test_acc})
        if val_acc > best:
            best = val_acc
            torch.save({'model': model.state_dict(), 'val_acc': val_acc},
                       f'checkpoints/{args.dataset}_{args.model}_{args.optimizer}.pt')
    with open(f'out/{args.dataset}_{args.model}_{args.optimizer}.json', 'w') as handle:
        json.dump(log, handle, indent=4)
    phase('after the last epoch')
    if os.environ.get('PHASES_FILE'):
        Path(os.environ['PHASES_FILE']).write_text(json.dumps(PHASES))


if __name__ == '__main__':
    main()
