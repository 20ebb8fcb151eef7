"""Chapter 4, Q28-Q32: gradient saliency maps, their figures and what their statistics show."""
from __future__ import annotations

from fmd.reporting.chance import near_chance
from fmd.reporting.chapters import Question
from fmd.reporting.code_reference import code_reference
from fmd.reporting.document import Document
from fmd.reporting.facts import Facts
from fmd.reporting.formatting import auc, pct
from fmd.reporting.helpers import add_figure, data_caveat, random_init_reminder, run_for
from fmd.reporting.prose import prose


def answer_saliency_code(doc: Document, facts: Facts, question: Question) -> None:
    """Q28: what compute_gradient_saliency_maps and compute_mean_saliency_maps compute."""
    from fmd.analysis import saliency

    code_reference(doc, saliency.compute_gradient_saliency_maps, saliency.compute_mean_saliency_maps)
    doc.para(prose('saliency.code'))


def answer_saliency_theory(doc: Document, facts: Facts, question: Question) -> None:
    """Q29: why the gradient of the logit shows what a decision is sensitive to, and its limits."""
    doc.para(prose('saliency.theory'))
    doc.para(prose('saliency.limits'))


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
            context.append(prose('saliency.near-chance'))
        elif chance is False:
            context.append('The model separates the classes better than chance, so its maps show '
                           'which pixels that decision is most sensitive to.')
    doc.para(saliency_numbers(facts, run.run.dataset, run.run.model), *context)


def answer_saliency_compare(doc: Document, facts: Facts, question: Question) -> None:
    """Q32: what each model's maps should show, against what their statistics do show."""
    simple = facts.saliency.get(('fakes_dataset', 'SimpleNet'))
    xception = facts.saliency.get(('synthetic_dataset', 'XceptionBased'))
    doc.para(prose('saliency.expect'))
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
                sentences.append(prose('saliency.border'))
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
        doc.para(prose('saliency.random-xception'))
    doc.para(data_caveat(facts), small=True)
