"""fmd (facial manipulation detection): everything beyond the assignment's top-level modules.

Subpackages are named for their job: `fmd.data` (face landmarks, self-blended training fakes),
`fmd.training` (training helpers beyond the assignment's Trainer), `fmd.models` (extra models).
The assignment's graded modules stay at the top level with their APIs.
"""
