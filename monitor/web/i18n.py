"""Interface text in English and Russian.

Templates write the English text and call `_()` on it; Russian comes from this table. The
language is the `lang` cookie (the switch in the page header), else the best of the
browser's Accept-Language. Dates are not formatted here: the browser shows them in the
reader's own time zone (static/app.js), with UTC in the title attribute.
"""

from __future__ import annotations

from collections.abc import Callable

LANGUAGES = ("en", "ru")

RU: dict[str, str] = {
    # Screenshots and visual diffs (web/visual.py).
    "Screenshots": "Снимки экрана",
    "Screenshot": "Снимок",
    "Visual diff": "Визуальное сравнение",
    "Changed": "Изменено",
    "of the page": "страницы",
    "regions": "областей",
    "Region": "Область",
    "width": "ширина",
    "height": "высота",
    "without outlines": "без рамок",
    "the changed regions are outlined": "изменённые области обведены",
    "The page looked the same in both versions.": "В обеих версиях страница выглядела одинаково.",
    "No screenshot of this version.": "У этой версии нет снимка.",
    "No visible change between these screenshots.": "Между этими снимками нет видимых изменений.",
    "These screenshots could not be compared within the limits for untrusted work.": (
        "Эти снимки не удалось сравнить в пределах ограничений для недоверенной работы."
    ),
    "Trusted timestamp": "Доверенная метка времени",
    "batch": "пакет",
    "serial": "серийный номер",
    "Download token": "Скачать метку",
    "Download what it signs": "Скачать подписанное",
    "waiting for the Time-Stamping Authority": "ожидает службу меток времени",
    "Independent copy": "Независимая копия",
    "captured": "снята",
    "pending": "ожидает",
    "last try": "последняя попытка",
    "failed": "не удалось",
    "Save each version to the Wayback Machine": "Сохранять каждую версию в Wayback Machine",
    "Memento TimeMap of this URL": "Карта версий Memento (TimeMap) этого адреса",
    "Connection (TLS)": "Соединение (TLS)",
    "Not recorded: this response was stored before monitor kept TLS provenance.": (
        "Не записано: этот ответ сохранён до того, как monitor стал записывать TLS."
    ),
    "Plain HTTP: no TLS.": "Обычный HTTP: без TLS.",
    "Protocol": "Протокол",
    "unknown": "неизвестно",
    "Certificate chain": "Цепочка сертификатов",
    "the leaf alone": "только конечный сертификат",
    "Download chain (PEM)": "Скачать цепочку (PEM)",
    "Certificate": "Сертификат",
    "Recorded by": "Как записано",
    "Subject": "Субъект",
    "Issuer": "Издатель",
    "Serial": "Серийный номер",
    "Valid": "Действует",
    "Watches": "Наблюдения",
    "Search": "Поиск",
    "Log in": "Войти",
    "Log out": "Выйти",
    "Username": "Имя пользователя",
    "Password": "Пароль",
    "Wrong username or password.": "Неверное имя пользователя или пароль.",
    "Too many failed attempts; try again in a few minutes.": (
        "Слишком много неудачных попыток; повторите через несколько минут."
    ),
    "Status": "Состояние",
    "Last check": "Последняя проверка",
    "Last change": "Последнее изменение",
    "Next check": "Следующая проверка",
    "ok": "в порядке",
    "changed": "изменено",
    "failing": "сбой",
    "failing since": "сбой с",
    "not checked yet": "ещё не проверялось",
    "not configured": "не настроено",
    "all": "все",
    "Filter": "Фильтр",
    "Statements": "Заявления",
    "Statement": "Заявление",
    "Versions": "Версии",
    "versions": "версий",
    "Version": "Версия",
    "Published": "Опубликовано",
    "removed": "удалено",
    "Removed": "Удалено",
    "Time": "Время",
    "Kind": "Вид",
    "Size": "Размер",
    "Score": "Оценка",
    "Summary": "Сводка",
    "Annotation": "Отметка",
    "Compare": "Сравнить",
    "Compare selected versions": "Сравнить выбранные версии",
    "Inline": "В тексте",
    "Side by side": "Рядом",
    "Title, date and links": "Заголовок, дата и ссылки",
    "Text": "Текст",
    "unchanged paragraphs": "неизменённых абзацев",
    "No change between these versions.": "Между этими версиями нет изменений.",
    "These versions could not be compared within the limits for untrusted work.": (
        "Эти версии не удалось сравнить в пределах ограничений для недоверенных данных."
    ),
    "Reason": "Причина",
    "Previous change": "Предыдущее изменение",
    "Next change": "Следующее изменение",
    "change": "изменение",
    "of": "из",
    "Keys: j / n next change, k / p previous.": "Клавиши: j / n — следующее, k / p — предыдущее.",
    "Before": "До",
    "After": "После",
    "Snapshot": "Снимок",
    "Archived text": "Текст в архиве",
    "Sanitised page": "Очищенная страница",
    "Page in a sandbox": "Страница в песочнице",
    "Response": "Ответ",
    "Headers": "Заголовки",
    "Download raw body": "Скачать тело ответа",
    "Download headers": "Скачать заголовки",
    "Download statement JSON": "Скачать JSON заявления",
    "Requested": "Запрошено",
    "Final URL": "Итоговый URL",
    "Redirects": "Перенаправления",
    "Server date": "Дата сервера",
    "Figure": "Иллюстрация",
    "This version records the removal of the statement.": (
        "Эта версия фиксирует удаление заявления."
    ),
    "No response is stored for this version.": "Для этой версии ответ не сохранён.",
    "Scripts of the archived page never run: it is shown without them, or in a sandbox.": (
        "Скрипты архивной страницы не выполняются: она показана без них или в песочнице."
    ),
    "Significant": "Существенно",
    "Noise": "Шум",
    "significant": "существенно",
    "noise": "шум",
    "Note": "Заметка",
    "Save": "Сохранить",
    "Annotate this change": "Отметить это изменение",
    "Annotations": "Отметки",
    "Learned furniture": "Обвязка страницы, выученная по архиву",
    "Not news, by the archive's evidence: masked before comparing, kept in the archive.": (
        "По свидетельству архива не новость: скрывается перед сравнением, в архиве остаётся."
    ),
    "Why": "Почему",
    "Since": "С",
    "slot": "место",
    "shape": "число",
    "template": "шаблон",
    "host": "сайт",
    "not furniture": "не обвязка",
    "Not furniture": "Не обвязка",
    "Ignore suggestions": "Предложения для ignore",
    "Phrases most often marked as noise; adding one masks it before comparing.": (
        "Фразы, чаще всего отмеченные как шум; добавленная фраза скрывается перед сравнением."
    ),
    "times": "раз",
    "Add to ignore": "Добавить в ignore",
    "Search all versions": "Поиск по всем версиям",
    "results": "результатов",
    "No results.": "Ничего не найдено.",
    "only in earlier versions": "только в прежних версиях",
    "in the current version": "в текущей версии",
    "statement removed": "заявление удалено",
    "Feed": "Лента",
    "Export": "Экспорт",
    "Add a watch": "Добавить наблюдение",
    "Edit": "Изменить",
    "Edit watch": "Изменить наблюдение",
    "Revert to the config file": "Вернуть настройки из файла",
    "Remove this watch": "Удалить наблюдение",
    "edited in the web UI": "изменено в веб-интерфейсе",
    "added in the web UI": "добавлено в веб-интерфейсе",
    "Name": "Название",
    "Interval": "Интервал",
    "Profile": "Профиль",
    "Language": "Язык",
    "Ignore (regular expressions, one a line)": "Ignore (регулярные выражения, по одному в строке)",
    "Ignore selectors (CSS, one a line)": "Ignore selectors (CSS, по одному в строке)",
    "Channels": "Каналы",
    "Threshold": "Порог",
    "Fetcher": "Загрузчик",
    "Obey robots.txt": "Соблюдать robots.txt",
    "Muted": "Без уведомлений",
    "Quiet hours": "Тихие часы",
    "Time zone": "Часовой пояс",
    "Digest": "Дайджест",
    "automatic": "автоматически",
    "Please correct the marked fields.": "Исправьте отмеченные поля.",
    "Users": "Пользователи",
    "Role": "Роль",
    "Save user": "Сохранить пользователя",
    "Delete": "Удалить",
    "leave empty to keep": "оставьте пустым, чтобы не менять",
    "Nothing stored yet.": "Пока ничего не сохранено.",
    "Found by": "Найдено наблюдением",
    "Every": "Каждые",
    "min": "мин",
    "Translations": "Переводы",
    "Statements found": "Найденные заявления",
    "Found": "Найдено",
    "Recent checks": "Последние проверки",
    "Outcome": "Результат",
    "Detail": "Подробности",
    "Not found": "Не найдено",
    "Forbidden": "Доступ запрещён",
    "Your role does not allow this.": "Ваша роль этого не позволяет.",
    "The form expired; reload the page and try again.": (
        "Форма устарела; перезагрузите страницу и повторите."
    ),
    "read-only public view": "публичный режим только для чтения",
    "first version": "первая версия",
    "Watch": "Наблюдение",
    "Settings": "Настройки",
    # A statement's language versions (monitor/languages.py words them).
    "Language versions": "Языковые версии",
    "English": "английский",
    "Russian": "русский",
    "Kazakh": "казахский",
    "Uzbek": "узбекский",
    "Kyrgyz": "киргизский",
    "Tajik": "таджикский",
    "Turkmen": "туркменский",
    "Chinese": "китайский",
    "Arabic": "арабский",
    "French": "французский",
    "German": "немецкий",
    "Spanish": "испанский",
    "Turkish": "турецкий",
    "published in {languages}": "опубликовано ({languages})",
    "edited in {languages}": "изменено ({languages})",
    "restored in {languages}": "восстановлено ({languages})",
    "removed in {languages}": "удалено ({languages})",
    "{languages} unchanged since {date}": "{languages} — без изменений с {date}",
    "{languages} removed on {date}": "{languages} — удалено {date}",
    " and ": " и ",
    "published {date}": "опубликовано {date}",
    "edited {date}": "изменено {date}",
    "restored {date}": "восстановлено {date}",
    "removed {date}": "удалено {date}",
    "unchanged since {date}": "без изменений с {date}",
    "Jan": "янв",
    "Feb": "фев",
    "Mar": "мар",
    "Apr": "апр",
    "May": "мая",
    "Jun": "июн",
    "Jul": "июл",
    "Aug": "авг",
    "Sep": "сен",
    "Oct": "окт",
    "Nov": "ноя",
    "Dec": "дек",
    "this page": "эта страница",
    "more paragraphs": "абзацев ещё",
    "Archived copy": "Копия в архиве",
    "Latest change": "Последнее изменение",
    # Annotations: saved where they were written, shown on every page of their version.
    "Annotation saved.": "Отметка сохранена.",
    "Nothing saved: choose a verdict or write a note.": (
        "Ничего не сохранено: выберите оценку или напишите заметку."
    ),
    "Annotations of this change": "Отметки этого изменения",
    "Notes": "Заметки",
    # The front page (web/front.py) and the grouped watch list.
    "Latest changes": "Последние изменения",
    "Ministry": "Ведомство",
    "Period": "Период",
    "any time": "за всё время",
    "last 24 hours": "за 24 часа",
    "last 7 days": "за 7 дней",
    "last 30 days": "за 30 дней",
    "since my last visit": "с моего прошлого визита",
    "Clear filters": "Сбросить фильтры",
    "Your last visit ended": "Ваш прошлый визит закончился",
    "Only what changed since": "Только изменения с тех пор",
    "Welcome: from your next visit on, what is new to you is marked here.": (
        "Добро пожаловать: со следующего визита новое для вас будет отмечено здесь."
    ),
    "Links": "Ссылки",
    "Before your last visit": "До вашего прошлого визита",
    "new to you": "новое для вас",
    "Diff": "Сравнение",
    "No changes match.": "Подходящих изменений нет.",
    "Newest changes": "Самые новые изменения",
    "Older changes": "Более ранние изменения",
    "Not a page of this list.": "Такой страницы в этом списке нет.",
    "The export could not be made.": "Выгрузку сделать не удалось.",
    "published": "опубликовано",
    "edited": "отредактировано",
    "restored": "восстановлено",
    "recovered": "снова доступно",
    "Sort by": "Сортировка",
    "newest change first": "сначала последние изменения",
    "title": "заголовок",
    "status word": "состояние",
    "Every watch in one table": "Все наблюдения одной таблицей",
    "Grouped by ministry": "По ведомствам",
    "statements": "заявлений",
    "since": "с",
    "new": "новое",
    "edited today": "изменено сегодня",
    "quiet": "без изменений",
    "Previous page": "Предыдущая страница",
    "Next page": "Следующая страница",
    "page": "страница",
}

_TABLES = {"ru": RU}


def translator(language: str) -> Callable[[str], str]:
    table = _TABLES.get(language, {})
    return lambda text: table.get(text, text)


def choose_language(cookie: str | None, accept_language: str | None) -> str:
    if cookie in LANGUAGES:
        return cookie
    best, best_q = "en", -1.0
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        code = tag.strip().lower().split("-")[0]
        if code in LANGUAGES and quality > best_q:
            best, best_q = code, quality
    return best
