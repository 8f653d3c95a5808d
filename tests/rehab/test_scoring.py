"""Questionnaire scoring on worked examples: pure functions, no database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from rehab import scoring
from rehab.scoring import InvalidAnswers, assess_change, score_answers


def _psfs(
    *scores: int | None,
    names: tuple[str, ...] = ("Sitting", "Driving", "Walking 1 km", "Stairs", "Lifting"),
):
    return {
        "activities": [{"activity": n, "score": s} for n, s in zip(names, scores, strict=False)]
    }


# --------------------------------------------------------------------------- PSFS


def test_it_scores_psfs_as_the_mean_of_rated_activities():
    # 3 + 5 + 6 = 14 over 3 activities: 4.666... -> 4.67
    scored = score_answers("psfs", _psfs(3, 5, 6))
    assert scored.score == Decimal("4.67")
    assert scored.items_answered == 3
    assert not scored.prorated


def test_it_scores_psfs_with_five_activities():
    assert score_answers("psfs", _psfs(0, 10, 4, 4, 7)).score == Decimal("5.00")


def test_it_leaves_an_unrated_psfs_activity_out_of_the_mean():
    scored = score_answers("psfs", _psfs(2, None, 4, 6))
    assert scored.score == Decimal("4.00")
    assert (scored.items_answered, scored.items_missing) == (3, 1)


def test_it_refuses_psfs_with_fewer_than_three_rated_activities():
    with pytest.raises(InvalidAnswers) as exc:
        score_answers("psfs", _psfs(2, None, 4))
    assert "activities" in exc.value.errors


@pytest.mark.parametrize("count", [2, 6])
def test_it_refuses_psfs_with_too_few_or_too_many_activities(count):
    names = tuple(f"Activity {i}" for i in range(count))
    with pytest.raises(InvalidAnswers) as exc:
        score_answers("psfs", _psfs(*([5] * count), names=names))
    assert "activities" in exc.value.errors


@pytest.mark.parametrize("bad", [11, -1, 5.5, "7", True])
def test_it_refuses_a_psfs_rating_outside_0_to_10(bad):
    with pytest.raises(InvalidAnswers) as exc:
        score_answers("psfs", _psfs(bad, 5, 5))
    assert "activities.0.score" in exc.value.errors


def test_it_refuses_the_same_psfs_activity_twice_whatever_its_case():
    with pytest.raises(InvalidAnswers) as exc:
        score_answers("psfs", _psfs(1, 2, 3, names=("Sitting", "  sitting ", "Driving")))
    assert "activities.1.activity" in exc.value.errors


def test_it_normalises_psfs_activity_names_so_a_retry_compares_equal():
    a = score_answers("psfs", _psfs(1, 2, 3, names=("Sitting  30 min", "Driving", "Walking")))
    b = score_answers("psfs", _psfs(1, 2, 3, names=(" Sitting 30 min", "Driving ", "Walking")))
    assert a.answers == b.answers
    assert a.answers["activities"][0]["activity"] == "Sitting 30 min"


# --------------------------------------------------------------------------- SBI


def _sbi(leg=5, numb=4, weak=2, sit=6):
    return {"leg_pain": leg, "numbness_tingling": numb, "weakness": weak, "sitting_pain": sit}


def test_it_scores_the_sbi_as_the_sum_of_four_items():
    assert score_answers("sbi", _sbi()).score == Decimal("17.00")
    assert score_answers("sbi", _sbi(0, 0, 0, 0)).score == Decimal("0.00")
    assert score_answers("sbi", _sbi(6, 6, 6, 6)).score == Decimal("24.00")


def test_it_prorates_one_skipped_sbi_item():
    # (5 + 4 + 6) / 3 * 4 = 20
    scored = score_answers("sbi", _sbi(weak=None))
    assert scored.score == Decimal("20.00")
    assert scored.prorated
    # (5 + 4 + 2) / 3 * 4 = 14.666... -> 14.67
    assert score_answers("sbi", _sbi(sit=None)).score == Decimal("14.67")


def test_it_refuses_an_sbi_with_two_skipped_items():
    with pytest.raises(InvalidAnswers) as exc:
        score_answers("sbi", _sbi(weak=None, sit=None))
    assert "answers" in exc.value.errors


def test_it_requires_every_sbi_item_to_be_sent_even_as_null():
    answers = _sbi()
    del answers["weakness"]
    with pytest.raises(InvalidAnswers) as exc:
        score_answers("sbi", answers)
    assert "weakness" in exc.value.errors


@pytest.mark.parametrize("bad", [7, -1, 3.0, "3", False])
def test_it_refuses_an_sbi_item_outside_0_to_6(bad):
    with pytest.raises(InvalidAnswers) as exc:
        score_answers("sbi", _sbi(leg=bad))
    assert "leg_pain" in exc.value.errors


def test_it_refuses_unknown_sbi_items():
    with pytest.raises(InvalidAnswers) as exc:
        score_answers("sbi", {**_sbi(), "back_pain": 3})
    assert "back_pain" in exc.value.errors


def test_it_marks_sbi_item_four_as_unverified_in_the_definition():
    items = scoring.INSTRUMENTS["sbi"].definition["items"]
    assert [i["verified"] for i in items] == [True, True, True, False]


# --------------------------------------------------------------------------- RMDQ


def test_it_scores_rmdq_as_the_number_of_ticked_statements():
    assert score_answers("rmdq", {"ticked": [1, 4, 7, 9, 12, 20]}).score == Decimal("6.00")
    assert score_answers("rmdq", {"ticked": []}).score == Decimal("0.00")
    assert score_answers("rmdq", {"ticked": list(range(1, 25))}).score == Decimal("24.00")


def test_it_prorates_up_to_two_unanswered_rmdq_statements():
    # 11 ticked of 22 answered: 11 * 24 / 22 = 12
    scored = score_answers("rmdq", {"ticked": list(range(1, 12)), "unanswered": [23, 24]})
    assert scored.score == Decimal("12.00")
    assert (scored.items_answered, scored.items_missing) == (22, 2)
    # 5 ticked of 23 answered: 120 / 23 = 5.217... -> 5.22
    assert score_answers("rmdq", {"ticked": [1, 2, 3, 4, 5], "unanswered": [9]}).score == Decimal(
        "5.22"
    )


def test_it_refuses_rmdq_with_three_unanswered_statements():
    with pytest.raises(InvalidAnswers) as exc:
        score_answers("rmdq", {"ticked": [1], "unanswered": [2, 3, 4]})
    assert "unanswered" in exc.value.errors


@pytest.mark.parametrize("ticked", [[0], [25], [1, 1], ["3"], [True], "1,2"])
def test_it_refuses_bad_rmdq_statement_numbers(ticked):
    with pytest.raises(InvalidAnswers) as exc:
        score_answers("rmdq", {"ticked": ticked})
    assert "ticked" in exc.value.errors


def test_it_refuses_a_statement_both_ticked_and_unanswered():
    with pytest.raises(InvalidAnswers) as exc:
        score_answers("rmdq", {"ticked": [1, 2], "unanswered": [2]})
    assert "unanswered" in exc.value.errors


def test_it_stores_rmdq_ticks_sorted_so_a_retry_compares_equal():
    assert score_answers("rmdq", {"ticked": [9, 2, 5]}).answers == {
        "ticked": [2, 5, 9],
        "unanswered": [],
    }


def test_it_ships_no_rmdq_statement_text():
    items = scoring.INSTRUMENTS["rmdq"].definition["items"]
    assert [i["number"] for i in items] == list(range(1, 25))
    assert all(i["text"] is None for i in items)


@pytest.mark.parametrize("instrument", ["psfs", "sbi", "rmdq"])
def test_it_refuses_answers_that_are_not_an_object(instrument):
    with pytest.raises(InvalidAnswers):
        score_answers(instrument, [1, 2, 3])


# --------------------------------------------------------------------------- change


def test_it_finds_a_meaningful_psfs_improvement_of_two_points_on_average():
    change = assess_change("psfs", baseline_score=Decimal("3.00"), score=Decimal("5.00"))
    assert change.direction == "improved"
    assert change.meaningful is True
    assert change.criteria == ("points",)


def test_it_finds_no_meaningful_psfs_change_below_two_points():
    change = assess_change("psfs", baseline_score=Decimal("3.00"), score=Decimal("4.99"))
    assert change.meaningful is False
    assert change.direction == "improved"


def test_it_finds_a_meaningful_psfs_change_of_three_points_in_one_activity():
    baseline = score_answers("psfs", _psfs(2, 4, 4))
    now = score_answers("psfs", _psfs(5, 4, 4, names=("sitting", "Driving", "Walking 1 km")))
    change = assess_change(
        "psfs",
        baseline_score=baseline.score,
        score=now.score,
        baseline_answers=baseline.answers,
        answers=now.answers,
    )
    assert now.score - baseline.score == Decimal("1.00")
    assert change.meaningful is True
    assert change.criteria == ("single_item",)
    assert change.items[0] == ("sitting", 3)


def test_it_finds_a_meaningful_rmdq_improvement_by_five_points():
    change = assess_change("rmdq", baseline_score=Decimal(20), score=Decimal(15))
    # 5 of 20 is only 25 %: the points criterion alone makes it meaningful.
    assert change.percent == Decimal("-25.00")
    assert change.criteria == ("points",)
    assert change.direction == "improved"


def test_it_finds_a_meaningful_rmdq_improvement_by_thirty_percent():
    change = assess_change("rmdq", baseline_score=Decimal(10), score=Decimal(7))
    assert change.criteria == ("percent",)
    assert change.meaningful is True


def test_it_finds_no_meaningful_rmdq_change_under_both_thresholds():
    change = assess_change("rmdq", baseline_score=Decimal(20), score=Decimal(16))
    assert change.meaningful is False


def test_it_reports_a_meaningful_rmdq_worsening():
    change = assess_change("rmdq", baseline_score=Decimal(4), score=Decimal(9))
    assert change.direction == "worsened"
    assert change.meaningful is True


def test_it_leaves_sbi_change_unjudged_because_section_five_has_no_threshold():
    change = assess_change("sbi", baseline_score=Decimal(20), score=Decimal(4))
    assert change.meaningful is None
    assert change.direction == "improved"
    assert scoring.INSTRUMENTS["sbi"].thresholds.success_at_or_below == Decimal("6.5")


SBI = scoring.INSTRUMENTS["sbi"].thresholds


@pytest.mark.parametrize(
    ("on", "score", "expected"),
    [
        (dt.date(2026, 4, 1), Decimal(2), None),  # week 3: too early to call it success
        (dt.date(2027, 3, 9), Decimal(2), None),  # the day before 12 months
        (dt.date(2027, 3, 10), Decimal("6.5"), True),
        (dt.date(2027, 3, 10), Decimal(7), False),
        (dt.date(2028, 1, 1), Decimal(3), True),  # later than 12 months still counts
    ],
)
def test_it_judges_sbi_success_only_from_twelve_months_after_baseline(on, score, expected):
    baseline = dt.date(2026, 3, 10)
    assert scoring.success(SBI, score=score, baseline_date=baseline, on=on) is expected


def test_it_judges_no_success_for_an_instrument_without_a_success_threshold():
    rmdq = scoring.INSTRUMENTS["rmdq"].thresholds
    on = dt.date(2030, 1, 1)
    assert scoring.success(rmdq, score=Decimal(0), baseline_date=dt.date(2026, 1, 1), on=on) is None


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (dt.date(2024, 2, 29), 12, dt.date(2025, 3, 1)),
        (dt.date(2026, 1, 31), 1, dt.date(2026, 3, 1)),
        (dt.date(2026, 12, 31), 12, dt.date(2027, 12, 31)),
        (dt.date(2026, 11, 30), 2, dt.date(2027, 1, 30)),
    ],
)
def test_it_counts_months_without_coming_early(day, months, expected):
    assert scoring.months_after(day, months) == expected


def test_it_gives_no_percent_change_from_a_zero_baseline():
    change = assess_change("rmdq", baseline_score=Decimal(0), score=Decimal(3))
    assert change.percent is None
    assert change.meaningful is False
