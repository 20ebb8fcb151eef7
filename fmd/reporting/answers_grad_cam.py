"""Chapter 5, Q33-Q35: Grad-CAM, its figures, and how it compares with the saliency maps."""
from __future__ import annotations

from fmd.core import runs
from fmd.reporting.chapters import Question
from fmd.reporting.code_reference import code_reference
from fmd.reporting.document import Document
from fmd.reporting.facts import Facts
from fmd.reporting.formatting import auc
from fmd.reporting.helpers import add_figure, data_caveat
from fmd.reporting.model_facts import INPUT_SIZE
from fmd.reporting.prose import prose


def answer_grad_cam_code(doc: Document, facts: Facts, question: Question) -> None:
    """Q33: how Grad-CAM works and what get_grad_cam_visualization does, with conv3 sizes."""
    code_reference(doc, 'grad_cam_analysis.py:get_grad_cam_visualization')
    doc.para(prose('grad-cam.method'))
    models = facts.models
    doc.para('`get_grad_cam_visualization` draws one random test image, runs pytorch-grad-cam\'s '
             '`GradCAM` on `model.conv3` with the predicted class as target, overlays the map on the '
             'un-normalised image and returns the 256×256×3 overlay with the image\'s label (shape '
             f'[1]). `conv3` is {models.simplenet_conv3_map[1]}×{models.simplenet_conv3_map[2]} in '
             f'SimpleNet and {models.xception_conv3_map[1]}×{models.xception_conv3_map[2]} in Xception '
             f'(for a {INPUT_SIZE}×{INPUT_SIZE} image, measured with forward hooks).')


def answer_grad_cam_figures(doc: Document, facts: Facts, question: Question) -> None:
    """Q34: the real and fake Grad-CAM figure of every run that has one."""
    for run in runs.ASSIGNMENT_RUNS:
        if 'grad_cam' not in run.analyses:
            continue
        label = f'{run.model} on {run.dataset}'
        note = ' (randomly initialised Xception)' if run.model == 'XceptionBased' and \
            facts.xception_random else ''
        add_figure(doc, facts, [run.figure('Real_Image_grad_cam'), run.figure('Fake_Image_grad_cam')],
                   f'Grad-CAM of {label}{note} on conv3 for a real (left) and a fake (right) test '
                   'image; the title gives the true label and the predicted class with its '
                   'probability', question.label, width=0.86)


def answer_grad_cam_compare(doc: Document, facts: Facts, question: Question) -> None:
    """Q35: Grad-CAM's resolution, how it differs from saliency, what one image per class supports."""
    models = facts.models
    doc.para(f'**Resolution.** SimpleNet\'s `conv3` map is {models.simplenet_conv3_map[1]}×'
             f'{models.simplenet_conv3_map[2]}, so its Grad-CAM can outline parts of a face; '
             f'Xception\'s `conv3` is {models.xception_conv3_map[1]}×{models.xception_conv3_map[2]}, so '
             f'each cell covers {INPUT_SIZE // models.xception_conv3_map[1]}×'
             f'{INPUT_SIZE // models.xception_conv3_map[2]} pixels and its maps are a few coarse blobs.')
    doc.para(prose('grad-cam.against-saliency'))
    sentences = []
    for (dataset, model), run in facts.runs.items():
        if 'grad_cam' in run.run.analyses and run.best_epoch is not None and run.metrics:
            sentences.append(f'{model} on {dataset}, test AUC {auc(run.fake_auc())}')
    doc.para('**What the maps can support.** Each figure shows one image per class: an anecdote, not '
             'a measurement. A map explains the model\'s prediction, right or wrong, so it is '
             'informative only where the model works (' + '; '.join(sentences) + ').'
             + (' Xception was randomly initialised in this run, so its Grad-CAM shows an untrained '
                'network\'s response.' if facts.xception_random else ''))
    doc.para(data_caveat(facts), small=True)
