"""Chapter 4, Q28-Q32: gradient saliency maps, their figures and what their statistics show."""
from __future__ import annotations

from fmd.reporting.answers_chance import near_chance
from fmd.reporting.chapters import Question
from fmd.reporting.code_reference import code_reference
from fmd.reporting.document import Document
from fmd.reporting.facts import Facts
from fmd.reporting.formatting import auc, pct
from fmd.reporting.helpers import add_figure, data_caveat, random_init_reminder, run_for


def answer_saliency_code(doc: Document, facts: Facts, question: Question) -> None:
    """Q28: what compute_gradient_saliency_maps and compute_mean_saliency_maps compute."""
    import saliency_map

    code_reference(doc, saliency_map.compute_gradient_saliency_maps,
                   saliency_map.compute_mean_saliency_maps)
    doc.para('For a batch of normalised images and their true labels, the function takes the '
             'gradient of each image\'s true-class logit with respect to its pixels '
             '(`torch.autograd.grad` on a detached copy, so the caller\'s tensor, the parameters\' '
             'gradients and the model\'s mode are untouched), and returns its absolute value, maximised '
             'over the three colour channels: a B×H×W map. `compute_mean_saliency_maps` min-max '
             'normalises every map to [0, 1] and averages them over all test images of each class.')


def answer_saliency_theory(doc: Document, facts: Facts, question: Question) -> None:
    """Q29: why the gradient of the logit shows what a decision is sensitive to, and its limits."""
    doc.para('Simonyan, Vedaldi and Zisserman (2014) linearise the network around an image x: for the '
             'class score S_c, S_c(x + δ) ≈ S_c(x) + w·δ with w = ∂S_c/∂x. The magnitude |w| at a pixel '
             'says how much a small change of that pixel would change the score, so bright pixels are '
             'those the decision is most sensitive to; one value per pixel is the maximum over the '
             'colour channels. The score is the logit, before the softmax, because a probability can '
             'also rise by lowering the other class\'s logit, which would mix in evidence about the '
             'other class.')
    doc.para('A saliency map is a local sensitivity, not an account of the whole decision: it is '
             'computed in one forward and one backward pass, but it is noisy, and in saturated regions '
             'the gradient can be small even where the evidence is. Normalising each map before '
             'averaging stops a few images with large gradients from dominating the mean maps.')


def saliency_numbers(facts: Facts, dataset: str, model: str) -> str:
    """One sentence on where the mean maps put their mass, from out/*_saliency_stats.json."""
    stats = facts.saliency.get((dataset, model))
    if not stats:
        return ''
    parts = []
    for name in ('real', 'fake'):
        if name in stats:
            parts.append(f'{name} {stats[name]["centre_share"]:.2f}')
    area = next(iter(v['centre_area_share'] for k, v in stats.items() if k in ('real', 'fake')), 0.25)
    sentence = (f'The central box covering {100 * area:.0f}% of the image holds this share of the mean '
                f'map\'s mass: {", ".join(parts)} (a flat map: {area:.2f}).')
    lattice = strongest_lattice(stats)
    if lattice:
        period, share, flat = lattice
        sentence += (f' {100 * share:.0f}% of the mean fake map\'s variance repeats on a {period}-pixel '
                     f'grid (a map without such a pattern: about {100 * flat:.1f}%).')
    return sentence


def strongest_lattice(stats: dict) -> tuple[int, float, float] | None:
    """(period, share, flat share) of the grid pattern that dominates the fake mean map, if any.

    A period-p grid's frequencies include those of every divisor of p, so shares grow with p: the
    answer is the shortest period holding at least 80% of the largest share, among periods far
    above what a pattern-free map would hold.
    """
    lattice = (stats.get('fake') or stats.get('real') or {}).get('lattice', {})
    strong = {int(p): v for p, v in lattice.items()
              if v['share'] >= 0.05 and v['share'] >= 5 * v['flat_map_share']}
    if not strong:
        return None
    top = max(v['share'] for v in strong.values())
    period = min(p for p, v in strong.items() if v['share'] >= 0.8 * top)
    return period, strong[period]['share'], strong[period]['flat_map_share']


def answer_saliency_figures(doc: Document, facts: Facts, question: Question) -> None:
    """Q30/Q31: one run's saliency figures, with its statistics and its test accuracy for context."""
    run = run_for(question, facts)
    if run.run.model == 'XceptionBased':
        doc.para(random_init_reminder(facts))
    add_figure(doc, facts, [run.run.figure('saliency_maps_and_images_pairs')],
               f'test images of {run.label} beside their saliency maps (true class and the model\'s '
               'P(fake) above each image; one colour scale for the whole figure)', question.label)
    add_figure(doc, facts, [run.run.figure('mean_saliency_maps')],
               f'mean of the min-max normalised saliency maps of all real and all fake test images, '
               f'{run.label}', question.label, width=0.8)
    context = []
    if run.best_epoch is not None:
        chance = near_chance(run)
        context.append(f'The model behind these maps reached {pct(run.at_best("test_acc"))} test '
                       f'accuracy' + (f' and ROC AUC {auc(run.fake_auc())}' if run.metrics else '')
                       + '.')
        if chance:
            context.append('That AUC is inside the range a label-blind score reaches on this test '
                           'set, so the maps show what the network is sensitive to, not evidence of '
                           'manipulation it has learnt.')
        elif chance is False:
            context.append('The model separates the classes better than chance, so its maps show '
                           'which pixels that decision is most sensitive to.')
    doc.para(saliency_numbers(facts, run.run.dataset, run.run.model), *context)


def answer_saliency_compare(doc: Document, facts: Facts, question: Question) -> None:
    """Q32: what each model's maps should show, against what their statistics do show."""
    simple = facts.saliency.get(('fakes_dataset', 'SimpleNet'))
    xception = facts.saliency.get(('synthetic_dataset', 'XceptionBased'))
    doc.para('**What to expect.** A face swap changes the inner face and leaves a blending boundary, '
             'so a detector that has found the manipulation should be most sensitive inside the face '
             'and along its edge, more on fakes than on reals. A GAN-generated image is fake '
             'everywhere: its traces are spread over the whole frame, so a good synthetic-face '
             'detector need not look at the face at all, and its maps can be diffuse or textured.')
    sentences = []
    if simple:
        real, fake = simple.get('real', {}), simple.get('fake', {})
        if real and fake:
            area = real['centre_area_share']
            difference = fake['centre_share'] - real['centre_share']
            if abs(difference) < 0.02:
                relation = 'both classes concentrate about equally on the face region'
            else:
                relation = ('the fake maps concentrate more on the face region than the real ones'
                            if difference > 0 else
                            'the fake maps concentrate less on the face region than the real ones')
            focus = max(real['centre_share'], fake['centre_share']) > area + 0.05
            sentences.append(f'**SimpleNet on fakes_dataset:** the central box ({100 * area:.0f}% of '
                             f'the image) holds {real["centre_share"]:.2f} of the mean real map and '
                             f'{fake["centre_share"]:.2f} of the mean fake map (flat: {area:.2f}); '
                             + relation + '.')
            if focus:
                sentences.append('Part of the lean to the centre is the architecture\'s own: '
                                 'SimpleNet\'s unpadded 7×7 convolutions see the outermost pixels '
                                 'through fewer windows, which darkens the border of every map.')
    if xception:
        lattice = strongest_lattice(xception)
        real, fake = xception.get('real', {}), xception.get('fake', {})
        if real and fake:
            sentences.append(f'**XceptionBased on synthetic_dataset:** central share '
                             f'{real["centre_share"]:.2f} (real) and {fake["centre_share"]:.2f} (fake).')
        if lattice:
            period, share, flat = lattice
            real_share = real.get('lattice', {}).get(str(period), {}).get('share')
            same = real_share is not None and abs(real_share - share) < 0.25 * max(share, 1e-9)
            sentences.append(f'Its mean maps repeat on a {period}-pixel grid ({100 * share:.0f}% of the '
                             f'fake map\'s variance; a pattern-free map: {100 * flat:.1f}%)'
                             + (f', and just as strongly on real images ({100 * real_share:.0f}%)'
                                if same else '') + '. A grid with the period of the network\'s strided '
                             'down-sampling' + (' that appears on both classes' if same else '')
                             + ' is a trace of the architecture, not of the images.')
    if sentences:
        doc.para(*sentences)
    else:
        doc.para('*No saliency statistics (out/*_saliency_stats.json): run saliency_map.py.*')
    if facts.xception_random:
        doc.para('Because Xception was randomly initialised in this run, its maps show what an '
                 'untrained architecture is sensitive to; the assignment\'s comparison (a fine-tuned '
                 'ImageNet network against SimpleNet) needs the pretrained weights.')
    doc.para(data_caveat(facts), small=True)
