"""Chapter 3, Q17-Q25: transfer learning, Xception's structure, its parameters and its training."""
from __future__ import annotations

from fmd.reporting.chapters import Question
from fmd.reporting.code_reference import code_reference
from fmd.reporting.document import Document
from fmd.reporting.facts import Facts
from fmd.reporting.formatting import count
from fmd.reporting.helpers import missing_run, n_train, random_init_caveat, training_command
from fmd.reporting.model_facts import INPUT_SIZE
from fmd.reporting.prose import prose


def answer_transfer(doc: Document, facts: Facts, question: Question) -> None:
    """Q17: why fine-tuning an ImageNet network helps, and how Xception started in this run."""
    size = n_train(facts, 'synthetic_dataset')
    faces = f'{size:,}' if size else 'a few thousand'
    doc.para('A network trained on ImageNet\'s 1.2 million images has learnt general visual features '
             '(edges, textures, parts) in its early and middle layers. Fine-tuning starts from those '
             'instead of from random weights: the new task needs far fewer labelled images and '
             f'epochs, and a {facts.models.based_params / 1e6:.0f}-million-parameter network can be '
             f'trained on {faces} training faces '
             'without simply memorising them. Only the new head starts from scratch; here every '
             'layer stays trainable, so the features can adapt to manipulation traces, which differ '
             'from ImageNet\'s object categories.')
    run = facts.xception
    if run.record is None:
        doc.para('*No training log of XceptionBased on synthetic_dataset.*')
    elif run.pretrained:
        source = run.record.get('pretrained_source')
        doc.para(f'In this run Xception started from ImageNet weights (`{source}`).')
    elif run.pretrained is False:
        doc.para(random_init_caveat(facts))


def answer_separable(doc: Document, facts: Facts, question: Question) -> None:
    """Q18: the depthwise separable convolution and how many weights it saves, counted in the model."""
    from xception import SeparableConv2d

    example = facts.models.separable_example
    k, c = example['kernel'], example['channels']
    code_reference(doc, SeparableConv2d.__init__, SeparableConv2d.forward)
    doc.para(prose('separable.idea'),
             f'The model has {facts.models.n_separable} separable convolutions. For one of its '
             f'{c}→{c}-channel {k}×{k} layers that is {example["separable"]:,} weights '
             f'({c}·{k}·{k} + {c}·{c}) instead of {example["regular"]:,} for a full convolution, '
             f'{example["regular"] / example["separable"]:.1f} times fewer.')


def answer_structure(doc: Document, facts: Facts, question: Question) -> None:
    """Q19: Xception's entry, middle and exit flows, with layer counts read from the model."""
    models = facts.models
    doc.para(f'The backbone has {models.n_plain_convs} ordinary convolutions, '
             f'{models.n_separable} separable convolutions and {models.n_shortcut_convs} 1×1 shortcut '
             f'convolutions, grouped as follows (counted in the model):')
    channels = models.block_channels
    entry = channels[:3]
    middle = channels[3:3 + models.n_middle_blocks]
    doc.bullets([
        f'**Entry flow:** two 3×3 convolutions ({models.stem_channels[0]} and '
        f'{models.stem_channels[1]} channels, the first with stride 2), then three residual blocks of '
        f'two separable convolutions each ({", ".join(str(c) for c in entry)} channels), each ending '
        'in a stride-2 max-pool, with a strided 1×1 convolution on the shortcut.',
        f'**Middle flow:** {models.n_middle_blocks} identical residual blocks of three '
        f'(ReLU, 3×3 separable convolution, batch norm) at {middle[0] if middle else "n/a"} channels, '
        'with identity shortcuts.',
        f'**Exit flow:** one more strided residual block ({channels[-2]}→{channels[-1]}), two '
        f'separable convolutions ({channels[-1]}→{models.conv4[0]}→{models.conv4[1]}), global '
        'average pooling and the fully connected classifier.',
    ])
    doc.para(f'That is {models.n_blocks} residual blocks in all. Every convolution is followed by batch '
             'normalisation; the residual connections (as in ResNet) let the '
             f'{models.n_plain_convs + models.n_separable}-layer feature extractor train without '
             'vanishing gradients. The total stride is '
             f'{INPUT_SIZE // models.feature_map[-1]}: a {INPUT_SIZE}×{INPUT_SIZE} input gives a '
             f'feature map of {models.feature_map[1]}×{models.feature_map[2]} positions.')


def answer_input_and_fc(doc: Document, facts: Facts, question: Question) -> None:
    """Q20: the input sizes Xception accepts and its original 1000-class classifier."""
    n_in, n_out = facts.models.backbone_fc
    doc.para('Xception was trained on ImageNet at 299×299 pixels (a 10×10 final feature map). Because '
             'the feature map is reduced by global average pooling before the classifier, any input of '
             f'at least 32×32 works; the course images are {INPUT_SIZE}×{INPUT_SIZE} and give a map '
             f'of {facts.models.feature_map[1]}×{facts.models.feature_map[2]}. The original classifier '
             f'read from the model is `fc = Linear({n_in}, {n_out})`: one logit for each of the '
             f'{n_out} ImageNet classes, {facts.models.backbone_fc_params:,} parameters.')


def answer_features(doc: Document, facts: Facts, question: Question) -> None:
    """Q21: the number of features the backbone hands to the classifier, and where they come from."""
    n_in, _ = facts.models.backbone_fc
    channels, height, width = facts.models.feature_map
    doc.para(f'**{n_in} features** (`model.fc.in_features` = {n_in}). The last separable convolution, '
             f'`conv4`, maps {facts.models.conv4[0]} to {facts.models.conv4[1]} channels; for a '
             f'{INPUT_SIZE}×{INPUT_SIZE} image its output is {channels}×{height}×{width} (measured with '
             'a forward hook), and global average pooling turns each of the '
             f'{channels} channels into one number: a {n_in}-dimensional vector is what the classifier '
             'sees, whatever the image size.')


def answer_backbone_params(doc: Document, facts: Facts, question: Question) -> None:
    """Q22: the backbone's trainable parameters, split into classifier and feature extractor."""
    from utils import get_nof_params

    models = facts.models
    doc.para(f'The Xception backbone has **{models.backbone_params:,}** trainable parameters, '
             f'{models.backbone_fc_params:,} of them in its {models.backbone_fc[1]}-class classifier '
             '(counted on the model built by `xception.build_xception_backbone`).')
    doc.table(['network', 'trainable parameters'],
              [['Xception backbone with its ImageNet classifier', count(models.backbone_params)],
               [f'of which fc ({models.backbone_fc[0]}→{models.backbone_fc[1]})',
                count(models.backbone_fc_params)],
               ['feature extractor alone', count(models.backbone_params - models.backbone_fc_params)]],
              'parameters of the Xception backbone, counted with `utils.get_nof_params`',
              question.label, align='lr')
    code_reference(doc, get_nof_params)


def answer_head(doc: Document, facts: Facts, question: Question) -> None:
    """Q23: the MLP head that get_xception_based_model puts in place of fc."""
    from models import get_xception_based_model

    code_reference(doc, get_xception_based_model)
    sizes = [facts.models.head_layers[0][0]] + [out for _, out in facts.models.head_layers]
    doc.para(f'The backbone\'s `fc` is replaced by an MLP {"→".join(str(s) for s in sizes)}: '
             f'{len(facts.models.head_layers)} linear layers with ReLU between them (read from the '
             'model). The last layer gives the two logits (real, fake) that the rest of the code '
             'expects. Every parameter, backbone included, is left trainable.')


def answer_based_params(doc: Document, facts: Facts, question: Question) -> None:
    """Q24: the Xception-based model's parameters against the backbone's."""
    models = facts.models
    rows = [['Xception backbone (1000-class fc)', count(models.backbone_params)],
            ['Xception-based model (MLP head)', count(models.based_params)],
            ['difference', f'{models.based_params - models.backbone_params:+,}'],
            ['MLP head alone', count(models.head_params)]]
    doc.table(['network', 'trainable parameters'], rows,
              'parameters of the Xception-based model against the backbone', question.label,
              align='lr', bold_last_row=False)
    doc.para(f'The model has **{models.based_params:,}** parameters, '
             f'{models.based_params - models.backbone_params:,} more than the backbone: the MLP head '
             f'({models.head_params:,}) replaces the original classifier ({models.backbone_fc_params:,}).')
    run = facts.xception
    if run.record and run.record.get('nof_params') is not None:
        doc.para(f'The training log agrees: `nof_params` = {run.record["nof_params"]:,}.')


def answer_train_xception(doc: Document, facts: Facts, question: Question) -> None:
    """Q25: the Xception training command, its timing and its initial weights."""
    run = facts.xception
    if missing_run(doc, run):
        return
    doc.code(training_command(run))
    seconds = run.seconds_per_epoch
    doc.para(f'{run.epochs} epoch(s) on `{run.record.get("device", "n/a")}`'
             + (f', {seconds:.1f} s per epoch' if seconds else '') + ', with the loss, optimizer, '
             'augmentation and checkpointing of Q6. Initial weights: '
             + ('ImageNet (`' + str(run.record.get('pretrained_source')) + '`).' if run.pretrained
                else 'random (no ImageNet weights could be loaded).' if run.pretrained is False
                else 'not recorded.'))
    if facts.xception_random:
        doc.para('See Q17 for what that means for Chapters 3-5.')
