"""English and German: the language a page, an email and a grader message are in, and where it
comes from (a signed-in user's saved choice, the language cookie of the header's switch, the
browser's Accept-Language)."""

from __future__ import annotations

import html
import re

import pytest
from django.core import mail
from django.utils import translation

from accounts.models import LanguagePreference
from submissions.models import Submission
from submissions.wording import student_message
from tests.platform.conftest import garbage_upload, graded, make_submission
from tests.platform.test_csp import inline_parts
from worker.tasks import grade_submission

GERMAN = {"HTTP_ACCEPT_LANGUAGE": "de-DE,de;q=0.9,en;q=0.5"}
ENGLISH = {"HTTP_ACCEPT_LANGUAGE": "en-GB,en;q=0.9"}


def html_lang(page: str) -> str:
    match = re.search(r'<html lang="([^"]+)"', page)
    assert match, "no <html lang>"
    return match.group(1)


def choose(user, language: str) -> None:
    LanguagePreference.objects.update_or_create(
        user=user, defaults={"language": language, "chosen": True}
    )


def test_it_serves_the_public_pages_in_the_browsers_language(client, challenge):
    home = client.get("/", **GERMAN).content.decode()
    board = client.get(f"/challenges/{challenge.slug}/leaderboard/", **GERMAN).content.decode()
    login = client.get("/accounts/login/", **GERMAN).content.decode()

    assert html_lang(home) == "de"
    assert "Kurs-Rangliste" in home and "Anmelden" in home
    assert html_lang(board) == "de"
    assert "Noch keine bewerteten Einreichungen." in board
    assert "Abgabefrist" in board
    assert html_lang(login) == "de"
    assert "Passwort vergessen?" in login
    english = client.get("/", **ENGLISH).content.decode()
    assert html_lang(english) == "en"
    assert "Course leaderboard" in english and "Kurs-Rangliste" not in english


def test_it_serves_a_students_pages_in_german(client, student, enrollment, challenge):
    graded(enrollment, challenge, 150.0)
    submission = graded(enrollment, challenge, 0.5)
    client.force_login(student)

    pages = {
        "course": client.get(f"/courses/{challenge.semester.course.slug}/", **GERMAN),
        "challenge": client.get(f"/challenges/{challenge.slug}/", **GERMAN),
        "board": client.get(f"/challenges/{challenge.slug}/leaderboard/", **GERMAN),
        "list": client.get("/submissions/", **GERMAN),
        "detail": client.get(f"/submissions/{submission.pk}/", **GERMAN),
        "profile": client.get("/accounts/profile/", **GERMAN),
    }

    for name, response in pages.items():
        page = response.content.decode()
        assert response.status_code == 200, name
        assert html_lang(page) == "de", name
        assert "Meine Einreichungen" in page, name  # the header
    assert "Modell hochladen" in pages["challenge"].content.decode()
    assert "Hochladen und bewerten" in pages["challenge"].content.decode()
    assert "Modelldatei" in pages["challenge"].content.decode()
    board = pages["board"].content.decode()
    assert "1 in der Rangliste, 1 bestanden" in board
    assert '<span class="badge passed">bestanden</span>' in board
    detail = pages["detail"].content.decode()
    assert "Nicht bestanden" in detail
    # Numbers in the German way: a decimal comma.
    assert "0,50" in detail and "bestanden ab 1,00" in detail
    assert "API-Token" in pages["profile"].content.decode()


def test_a_saved_choice_wins_over_the_browser(client, student, challenge):
    choose(student, "de")
    client.force_login(student)

    page = client.get("/", **ENGLISH).content.decode()

    assert html_lang(page) == "de"
    assert "Meine Kurse" in page
    choose(student, "en")
    client.force_login(student)  # a choice made elsewhere applies from the next sign-in
    page = client.get("/", **GERMAN).content.decode()
    assert html_lang(page) == "en"
    assert "My courses" in page


def test_the_header_switch_saves_a_signed_in_users_choice(client, student, challenge):
    client.force_login(student)
    page = client.get("/", **ENGLISH).content.decode()
    assert 'action="/i18n/setlang/"' in page

    response = client.post("/i18n/setlang/", {"language": "de", "next": "/submissions/"})

    assert response.status_code == 302
    assert response["Location"] == "/submissions/"
    preference = LanguagePreference.objects.get(user=student)
    assert (preference.language, preference.chosen) == ("de", True)
    # Another browser (no cookie) that asks for English still gets German.
    other = client.__class__()
    other.force_login(student)
    assert html_lang(other.get("/", **ENGLISH).content.decode()) == "de"


def test_the_header_switch_works_without_an_account(client, challenge):
    client.post("/i18n/setlang/", {"language": "de", "next": "/"})

    page = client.get("/", **ENGLISH).content.decode()

    assert html_lang(page) == "de"
    assert not LanguagePreference.objects.exists()


def test_it_refuses_a_language_it_does_not_have(client, student):
    client.force_login(student)

    client.post("/i18n/setlang/", {"language": "fr", "next": "/"})

    assert not LanguagePreference.objects.filter(chosen=True).exists()
    assert html_lang(client.get("/", **ENGLISH).content.decode()) == "en"


def test_signing_in_remembers_the_browsers_language_for_emails(client, student):
    student.set_password("pw-for-the-test")
    student.save()

    client.post(
        "/accounts/login/", {"username": student.username, "password": "pw-for-the-test"}, **GERMAN
    )

    preference = LanguagePreference.objects.get(user=student)
    assert (preference.language, preference.chosen) == ("de", False)
    # Not a choice: the next browser's own language still decides its pages.
    assert html_lang(client.get("/", **ENGLISH).content.decode()) == "en"


def test_an_upload_refusal_reads_german(client, student, enrollment, challenge):
    client.force_login(student)

    response = client.post(f"/challenges/{challenge.slug}/", {"file": garbage_upload()}, **GERMAN)

    page = response.content.decode()
    assert "Das ist keine Modelldatei, die der Grader kennt" in page
    assert "exportieren Sie Ihr Modell mit torch.export.save" in page


def test_a_grader_error_stored_in_english_reads_german(client, student, enrollment, challenge):
    error = (
        "your model raised ValueError; run the grader's check command on your own machine to"
        " see the details"
    )
    submission = make_submission(
        enrollment, challenge, status=Submission.Status.FAILED, error=error
    )
    client.force_login(student)

    german = client.get(f"/submissions/{submission.pk}/", **GERMAN).content.decode()
    english = client.get(f"/submissions/{submission.pk}/", **ENGLISH).content.decode()

    assert (
        "Ihr Modell hat einen ValueError ausgelöst; führen Sie den check-Befehl des Graders auf"
        " Ihrem eigenen Rechner aus" in german
    )
    assert html.escape(error) in english


def test_grader_messages_keep_their_values_and_read_numbers_the_readers_way():
    message = "your model used more than 4.0 GB of memory"
    nested = (
        "your .pt2 was compressed again after saving; re-export the model with torch.export.save"
    )

    with translation.override("de"):
        assert student_message(message) == "Ihr Modell hat mehr als 4,0 GB Arbeitsspeicher belegt"
        assert student_message(nested) == (
            "Ihre .pt2-Datei wurde nach dem Speichern noch einmal komprimiert; exportieren Sie"
            " das Modell erneut mit torch.export.save"
        )
        # Words no template knows (a framework's own message) stay as they are.
        assert student_message("mat1 and mat2 shapes cannot be multiplied") == (
            "mat1 and mat2 shapes cannot be multiplied"
        )
    with translation.override("en"):
        assert student_message(message) == message


@pytest.mark.slow
@pytest.mark.usefixtures("fresh_runners")
def test_the_workers_email_and_message_are_in_the_students_language(
    client, student, enrollment, challenge, tiny_models, django_capture_on_commit_callbacks
):
    choose(student, "de")
    submission = make_submission(
        enrollment, challenge, content=tiny_models.wrong_shape.read_bytes()
    )

    with django_capture_on_commit_callbacks(execute=True):
        grade_submission.run(str(submission.pk))

    [email] = mail.outbox
    assert email.to == [student.email]
    assert "fehlgeschlagen" in email.subject
    assert "ist fertig bewertet" in email.body
    assert "30 Werte pro Bild" in email.body
    submission.refresh_from_db()
    assert "30 values per image" in submission.error  # stored in English, shown translated
    client.force_login(student)
    page = client.get(f"/submissions/{submission.pk}/", **ENGLISH).content.decode()
    assert "die Ausgabe Ihres Modells hat nicht die Form" in page


def test_the_js_catalogue_is_a_script_of_the_site_itself(client, student, enrollment, challenge):
    client.force_login(student)

    catalogue = client.get("/jsi18n/", **GERMAN)
    page = client.get("/submissions/", **GERMAN)

    assert catalogue.status_code == 200
    assert catalogue["Content-Type"].startswith("text/javascript")
    body = catalogue.content.decode()
    assert '"nicht bestanden"' in body and '"Ihre Uhrzeit: %s (%s)"' in body
    html = page.content.decode()
    assert '<script src="/jsi18n/" defer></script>' in html
    assert inline_parts(html) == []
    assert "script-src 'self'" in page["Content-Security-Policy"]
