"""The assignment's questions, in its order: number, short title, and the function that answers each.

The titles are short paraphrases reconstructed from the assignment's code skeleton and its
deliverables (the handout's own wording is not in this repository). The report writes one
`### Q<n> <title>` entry per row, in this order, then the bonus.
"""
from __future__ import annotations

from fmd.reporting.answers_chance import answer_chance
from fmd.reporting.answers_dataset import answer_getitem, answer_len, answer_samples
from fmd.reporting.answers_grad_cam import (
    answer_grad_cam_code,
    answer_grad_cam_compare,
    answer_grad_cam_figures,
)
from fmd.reporting.answers_metrics import answer_auc, answer_det, answer_proportion, answer_roc_det
from fmd.reporting.answers_saliency import (
    answer_saliency_code,
    answer_saliency_compare,
    answer_saliency_figures,
    answer_saliency_theory,
)
from fmd.reporting.answers_training import (
    answer_best_epoch,
    answer_curves,
    answer_evaluate,
    answer_train_one_epoch,
    answer_train_simplenet,
)
from fmd.reporting.answers_xception import (
    answer_backbone_params,
    answer_based_params,
    answer_features,
    answer_head,
    answer_input_and_fc,
    answer_separable,
    answer_structure,
    answer_train_xception,
    answer_transfer,
)
from fmd.reporting.chapters import BONUS_TITLE, CHAPTERS, QUESTION_RUNS, Question

__all__ = ['BONUS_TITLE', 'CHAPTERS', 'QUESTIONS', 'QUESTION_RUNS', 'Question']

# The number of each chapter's first question; the questions after it up to the next are its own.
CHAPTER_STARTS = {1: 1, 2: 13, 3: 17, 4: 28, 5: 33}

ROWS = (
    (1, 'FacesDataset.__getitem__: one image and its label', answer_getitem),
    (2, 'FacesDataset.__len__: the size of each split', answer_len),
    (3, 'A real and a fake sample of each dataset', answer_samples),
    (4, 'Trainer.train_one_epoch', answer_train_one_epoch),
    (5, 'Trainer.evaluate_model_on_dataloader, validate and test', answer_evaluate),
    (6, 'Training SimpleNet on fakes_dataset: the set-up and why', answer_train_simplenet),
    (7, 'Loss and accuracy curves of SimpleNet on fakes_dataset', answer_curves),
    (8, 'Best validation accuracy and the test accuracy at that epoch', answer_best_epoch),
    (9, 'Proportion of fake to real images in the fakes_dataset test set', answer_proportion),
    (10, 'ROC and DET curves of SimpleNet on fakes_dataset', answer_roc_det),
    (11, 'AUC of each score, and why one ROC curve lies under the diagonal', answer_auc),
    (12, 'Reading the DET curve: miss rate, false alarms and the equal error rate', answer_det),
    (13, 'Training SimpleNet on synthetic_dataset: loss and accuracy curves', answer_curves),
    (14, 'Best validation accuracy and the test accuracy at that epoch', answer_best_epoch),
    (15, 'Proportion of fake to real images in the synthetic_dataset test set', answer_proportion),
    (16, 'Is SimpleNet better than chance on synthetic faces? Why (not)?', answer_chance),
    (17, 'Why fine-tune a network pre-trained on ImageNet', answer_transfer),
    (18, "Xception's building block: the depthwise separable convolution", answer_separable),
    (19, "Xception's structure: entry, middle and exit flow with residual connections", answer_structure),
    (20, "Xception's input size and its original classifier", answer_input_and_fc),
    (21, 'How many features the backbone hands to the classifier', answer_features),
    (22, 'Number of parameters of the Xception backbone', answer_backbone_params),
    (23, 'get_xception_based_model: the new MLP head', answer_head),
    (24, 'Number of parameters of the Xception-based model, and how many were added', answer_based_params),
    (25, 'Training the Xception-based model on synthetic_dataset', answer_train_xception),
    (26, 'Loss and accuracy curves of the Xception-based model', answer_curves),
    (27, 'Best validation accuracy and the test accuracy at that epoch', answer_best_epoch),
    (28, 'compute_gradient_saliency_maps', answer_saliency_code),
    (29, 'What a saliency map shows, and why the gradient', answer_saliency_theory),
    (30, 'Saliency maps of SimpleNet on fakes_dataset', answer_saliency_figures),
    (31, 'Saliency maps of the Xception-based model on synthetic_dataset', answer_saliency_figures),
    (32, 'What the saliency maps show, compared between the models', answer_saliency_compare),
    (33, 'Grad-CAM and get_grad_cam_visualization', answer_grad_cam_code),
    (34, 'Grad-CAM of the three trained models on a real and a fake test image', answer_grad_cam_figures),
    (35, 'What Grad-CAM shows, compared with the saliency maps', answer_grad_cam_compare),
)


def chapter_of(number: int) -> int:
    """The chapter a question belongs to: the last one that starts at or before it."""
    return max(chapter for chapter, first in CHAPTER_STARTS.items() if first <= number)


QUESTIONS: tuple[Question, ...] = tuple(Question(number, chapter_of(number), title, answer)
                                        for number, title, answer in ROWS)
