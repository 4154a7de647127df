"""Point 10's warning (gan_helpers.balance) on records of the two CPU reference runs: when it fires and when it stays silent.

The numbers are the reference runs' own epoch means (all 506 images, lr_d
1e-5, lr_g 5e-5), rounded to four digits: the transposed run's discriminator
won in epochs 5-14 while its samples were collapsed (epochs 1-13); the
upsampling run stayed balanced.
"""

from __future__ import annotations

import pytest

from gan_helpers.balance import Thresholds, point10_warnings, warning_history

# (D(x), D(G(z))) of epochs 1-20, and of epochs 60-70 (isolated dips below 0.1 at 65)
TRANSPOSED = [(0.7519, 0.2769), (0.8555, 0.2394), (0.8848, 0.1586), (0.9089, 0.1047), (0.921, 0.0788), (0.9308, 0.0655),
              (0.9404, 0.0557), (0.9447, 0.0631), (0.9458, 0.0448), (0.9534, 0.0425), (0.953, 0.0423), (0.9574, 0.0412),
              (0.9566, 0.0395), (0.9494, 0.0605), (0.876, 0.1609), (0.8504, 0.1634), (0.7957, 0.2262), (0.764, 0.2973),
              (0.7752, 0.2825), (0.6199, 0.3683)]
TRANSPOSED_60 = [(0.8115, 0.1771), (0.8629, 0.1227), (0.7269, 0.2837), (0.7993, 0.204), (0.8862, 0.1436), (0.9019, 0.0763),
                 (0.818, 0.2286), (0.6916, 0.2919), (0.8404, 0.167), (0.7827, 0.1727), (0.7756, 0.2295)]
UPSAMPLING = [(0.6371, 0.5379), (0.559, 0.5463), (0.4613, 0.5469), (0.4479, 0.5631), (0.4369, 0.5341), (0.4383, 0.5514),
              (0.4436, 0.5456), (0.4497, 0.5334), (0.4484, 0.5437), (0.4645, 0.5241), (0.4832, 0.5451), (0.477, 0.548),
              (0.4748, 0.5428), (0.4901, 0.5362), (0.5352, 0.5274), (0.4664, 0.5087), (0.5065, 0.521), (0.4793, 0.5205),
              (0.5039, 0.5053), (0.572, 0.5184)]
# (diversity ratio, distinct nearest training images) of the quality records of epochs 0-20
TRANSPOSED_QUALITY = [(0.0028, 1), (0.0812, 1), (0.0099, 1), (0.0073, 1), (0.0077, 1), (0.0075, 1), (0.0294, 1), (0.0316, 1),
                      (0.0634, 2), (0.0349, 1), (0.0351, 1), (0.109, 1), (0.1194, 1), (0.1233, 2), (0.7394, 10), (0.8211, 3),
                      (0.6535, 47), (0.7474, 48), (1.0686, 3), (1.4144, 56), (0.6374, 61)]
UPSAMPLING_QUALITY = [(0.0028, 1), (1.664, 114), (1.1478, 120), (1.0046, 71), (0.8107, 87), (0.9555, 80), (0.7959, 70),
                      (1.2349, 84), (0.9954, 75), (0.9371, 94), (1.0102, 70), (0.6046, 50), (1.1586, 103), (1.0203, 94),
                      (0.7031, 41), (0.8744, 79), (0.8588, 29), (0.7955, 36), (0.7853, 63), (0.2987, 11), (1.137, 96)]


def metrics(pairs, first: int = 1) -> list[dict]:
    return [{"epoch": first + i, "loss_D": 0.5, "loss_G": 1.0, "D_x": d_x, "D_G_z": d_g_z, "seconds": 45.0}
            for i, (d_x, d_g_z) in enumerate(pairs)]


def quality(pairs) -> list[dict]:
    return [{"epoch": i, "swd": 300.0, "diversity_ratio": ratio, "distinct_nearest": distinct} for i, (ratio, distinct) in enumerate(pairs)]


def kinds(alerts) -> dict[str, int]:
    return {alert.kind: alert.since for alert in alerts}


def test_the_transposed_runs_winning_discriminator_is_named_from_its_third_epoch_below_the_line():
    records = metrics(TRANSPOSED)
    for epoch in range(1, 7):  # D(G(z)) first below 0.1 in epoch 5: two epochs in a row are not yet a warning
        assert "discriminator" not in kinds(point10_warnings(records, epoch=epoch)), epoch
    for epoch in range(7, 15):
        assert kinds(point10_warnings(records, epoch=epoch))["discriminator"] == 5, epoch
    for epoch in range(15, 21):  # D(G(z)) 0.16 and rising: the discriminator no longer wins
        assert point10_warnings(records, epoch=epoch) == [], epoch


def test_the_warning_line_says_which_since_when_with_the_numbers_and_point_10s_remedy():
    (alert,) = point10_warnings(metrics(TRANSPOSED), epoch=10)
    line = alert.line()
    assert line.startswith("point 10: the discriminator is winning since epoch 5 (epoch 10: D(x) 0.953, D(G(z)) 0.043;")
    assert "6 epochs in a row" in line and line.endswith("lower lr_d or make D smaller.")


def test_single_epochs_below_the_line_and_a_balanced_run_stay_silent():
    assert warning_history(metrics(TRANSPOSED_60, first=60)) == []  # epoch 65: D(G(z)) 0.076 for one epoch
    assert warning_history(metrics(UPSAMPLING), quality(UPSAMPLING_QUALITY)) == []  # lowest diversity 0.30 (epoch 19)


def test_a_missing_epoch_ends_a_streak():
    records = metrics(TRANSPOSED)
    del records[7]  # epoch 8 missing: epochs 9 and 10 are only two in a row
    assert "discriminator" not in kinds(point10_warnings(records, epoch=10))
    assert kinds(point10_warnings(records, epoch=11))["discriminator"] == 9


def test_a_winning_generator_is_named_after_the_epochs_in_a_row():
    records = metrics([(0.5, 0.5), (0.3, 0.92), (0.2, 0.95)])
    assert point10_warnings(records) == []
    records += metrics([(0.2, 0.97)], first=4)
    (alert,) = point10_warnings(records)
    assert (alert.kind, alert.since) == ("generator", 2)
    assert "lower lr_g or make G smaller" in alert.line()


def test_collapsed_samples_are_named_from_their_first_sample_epoch_and_epoch_0_never_counts():
    records, samples = metrics(TRANSPOSED), quality(TRANSPOSED_QUALITY)
    assert point10_warnings([], samples[:1], epoch=0) == []  # the untrained generator draws one picture: not a warning
    assert kinds(point10_warnings(records, samples, epoch=1)) == {"collapse": 1}
    assert kinds(point10_warnings(records, samples, epoch=13)) == {"discriminator": 5, "collapse": 1}
    assert kinds(point10_warnings(records, samples, epoch=14)) == {"discriminator": 5}  # diversity 0.74 again
    collapse = next(a for a in point10_warnings(records, samples, epoch=10) if a.kind == "collapse")
    assert "collapsed since epoch 1 (epoch 10: diversity 0.035" in collapse.line() and "look for bugs" in collapse.line()


def test_between_sample_epochs_the_newest_quality_record_counts():
    records, samples = metrics(TRANSPOSED), quality(TRANSPOSED_QUALITY)
    every_tenth = [r for r in samples if r["epoch"] % 10 == 0]  # epoch 10: 0.035, epoch 20: 0.64
    assert kinds(point10_warnings(records, every_tenth, epoch=15)).get("collapse") == 10
    assert "collapse" not in kinds(point10_warnings(records, every_tenth, epoch=20))


def test_the_history_lists_each_spell_once_as_it_ended():
    spells = warning_history(metrics(TRANSPOSED), quality(TRANSPOSED_QUALITY))
    assert [(a.kind, a.since, a.epoch) for a in spells] == [("collapse", 1, 13), ("discriminator", 5, 14)]


@pytest.mark.parametrize("thresholds, expected", [
    (Thresholds(in_a_row=12), {}),  # the failure lasted 10 epochs
    (Thresholds(d_g_z_low=0.05, d_x_high=0.99, in_a_row=6), {}),  # D(G(z)) was below 0.05 in epochs 9-13 only: 5 in a row
    (Thresholds(d_g_z_low=0.05, d_x_high=0.99, in_a_row=5), {"discriminator": 9}),
    (Thresholds(d_g_z_low=0.2), {"discriminator": 3}),
])
def test_thresholds_are_parameters(thresholds, expected):
    assert kinds(point10_warnings(metrics(TRANSPOSED), epoch=13, thresholds=thresholds)) == expected


def test_thresholds_refuse_zero_epochs_in_a_row():
    with pytest.raises(ValueError):
        Thresholds(in_a_row=0)
