"""The assignment's questions, in its order: number, chapter, short title, and the fmd.reporting
function that answers each.

The titles are short paraphrases reconstructed from the assignment's code skeleton and its
deliverables (the handout's own wording is not in this repository). fmd.reporting writes one
`### Q<n> <title>` entry per row, in this order, then the bonus.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Question:
    number: int
    chapter: int
    title: str
    answer: str  # name of the function in fmd.reporting that writes the entry

    @property
    def label(self) -> str:
        return f'Q{self.number}'


CHAPTERS = {
    1: 'Chapter 1: Building a dataset and a trainer; SimpleNet on face-swap fakes',
    2: 'Chapter 2: SimpleNet on synthetic (GAN-generated) faces',
    3: 'Chapter 3: Fine-tuning Xception on synthetic faces',
    4: 'Chapter 4: Saliency maps',
    5: 'Chapter 5: Grad-CAM',
}

QUESTIONS: tuple[Question, ...] = (
    Question(1, 1, 'FacesDataset.__getitem__: one image and its label', 'answer_getitem'),
    Question(2, 1, 'FacesDataset.__len__: the size of each split', 'answer_len'),
    Question(3, 1, 'A real and a fake sample of each dataset', 'answer_samples'),
    Question(4, 1, 'Trainer.train_one_epoch', 'answer_train_one_epoch'),
    Question(5, 1, 'Trainer.evaluate_model_on_dataloader, validate and test', 'answer_evaluate'),
    Question(6, 1, 'Training SimpleNet on fakes_dataset: the set-up and why', 'answer_train_simplenet'),
    Question(7, 1, 'Loss and accuracy curves of SimpleNet on fakes_dataset', 'answer_curves'),
    Question(8, 1, 'Best validation accuracy and the test accuracy at that epoch', 'answer_best_epoch'),
    Question(9, 1, 'Proportion of fake to real images in the fakes_dataset test set',
             'answer_proportion'),
    Question(10, 1, 'ROC and DET curves of SimpleNet on fakes_dataset', 'answer_roc_det'),
    Question(11, 1, 'AUC of each score, and why one ROC curve lies under the diagonal', 'answer_auc'),
    Question(12, 1, 'Reading the DET curve: miss rate, false alarms and the equal error rate',
             'answer_det'),
    Question(13, 2, 'Training SimpleNet on synthetic_dataset: loss and accuracy curves',
             'answer_curves'),
    Question(14, 2, 'Best validation accuracy and the test accuracy at that epoch', 'answer_best_epoch'),
    Question(15, 2, 'Proportion of fake to real images in the synthetic_dataset test set',
             'answer_proportion'),
    Question(16, 2, 'Is SimpleNet better than chance on synthetic faces? Why (not)?',
             'answer_chance'),
    Question(17, 3, 'Why fine-tune a network pre-trained on ImageNet', 'answer_transfer'),
    Question(18, 3, "Xception's building block: the depthwise separable convolution",
             'answer_separable'),
    Question(19, 3, "Xception's structure: entry, middle and exit flow with residual connections",
             'answer_structure'),
    Question(20, 3, "Xception's input size and its original classifier", 'answer_input_and_fc'),
    Question(21, 3, 'How many features the backbone hands to the classifier', 'answer_features'),
    Question(22, 3, 'Number of parameters of the Xception backbone', 'answer_backbone_params'),
    Question(23, 3, 'get_xception_based_model: the new MLP head', 'answer_head'),
    Question(24, 3, 'Number of parameters of the Xception-based model, and how many were added',
             'answer_based_params'),
    Question(25, 3, 'Training the Xception-based model on synthetic_dataset', 'answer_train_xception'),
    Question(26, 3, 'Loss and accuracy curves of the Xception-based model', 'answer_curves'),
    Question(27, 3, 'Best validation accuracy and the test accuracy at that epoch', 'answer_best_epoch'),
    Question(28, 4, 'compute_gradient_saliency_maps', 'answer_saliency_code'),
    Question(29, 4, 'What a saliency map shows, and why the gradient', 'answer_saliency_theory'),
    Question(30, 4, 'Saliency maps of SimpleNet on fakes_dataset', 'answer_saliency_figures'),
    Question(31, 4, 'Saliency maps of the Xception-based model on synthetic_dataset',
             'answer_saliency_figures'),
    Question(32, 4, 'What the saliency maps show, compared between the models', 'answer_saliency_compare'),
    Question(33, 5, 'Grad-CAM and get_grad_cam_visualization', 'answer_grad_cam_code'),
    Question(34, 5, 'Grad-CAM of the three trained models on a real and a fake test image',
             'answer_grad_cam_figures'),
    Question(35, 5, 'What Grad-CAM shows, compared with the saliency maps', 'answer_grad_cam_compare'),
)

# Which training run (dataset, model) a question about runs refers to.
QUESTION_RUNS = {
    6: ('fakes_dataset', 'SimpleNet'), 7: ('fakes_dataset', 'SimpleNet'),
    8: ('fakes_dataset', 'SimpleNet'), 9: ('fakes_dataset', 'SimpleNet'),
    10: ('fakes_dataset', 'SimpleNet'), 11: ('fakes_dataset', 'SimpleNet'),
    12: ('fakes_dataset', 'SimpleNet'),
    13: ('synthetic_dataset', 'SimpleNet'), 14: ('synthetic_dataset', 'SimpleNet'),
    15: ('synthetic_dataset', 'SimpleNet'), 16: ('synthetic_dataset', 'SimpleNet'),
    25: ('synthetic_dataset', 'XceptionBased'), 26: ('synthetic_dataset', 'XceptionBased'),
    27: ('synthetic_dataset', 'XceptionBased'),
    30: ('fakes_dataset', 'SimpleNet'), 31: ('synthetic_dataset', 'XceptionBased'),
}

BONUS_TITLE = "A detector with at most 1% of SimpleNet's parameters"
