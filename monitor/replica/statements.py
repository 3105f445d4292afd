"""Seed content of the replica: eight fictional MFA of Kazakhstan statements in en/ru/kk.

The events, people and numbers are invented (no real quotes), but the texts follow the
style of the Ministry's real releases so that extraction and diffing are exercised on
realistic material: long titles, Cyrillic with the Kazakh-specific letters, numbers
written the way each language writes them, `<p>` bodies with attachment and external links.
"""

from __future__ import annotations

import re
from typing import TypedDict

# Order matters only for display; gov.kz's own language codes (Kazakh is "kk", not "kz").
LANGS: tuple[str, ...] = ("en", "ru", "kk")


class StatementText(TypedDict):
    """One language version of a statement, as the content-manager API stores it."""

    title: str
    slug: str
    short_description: str
    body: str


class Statement(TypedDict):
    """A statement with all its language versions; `created_date` is shared by all."""

    id: int
    created_date: str
    texts: dict[str, StatementText]


_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def _squash(text: str) -> str:
    # Long texts are written as wrapped triple-quoted literals to keep source lines short;
    # the site stores them as single lines.
    return " ".join(text.split())


def _text(title: str, slug: str, short: str, body: str) -> StatementText:
    """Build one language version; `body` is blank-line separated paragraphs."""
    paragraphs = _PARAGRAPH_BREAK.split(body.strip())
    return {
        "title": _squash(title),
        "slug": slug,
        "short_description": _squash(short),
        # The CMS emits one <p> per paragraph, separated by newlines.
        "body": "\n".join(f"<p>{_squash(p)}</p>" for p in paragraphs),
    }


STATEMENTS: list[Statement] = [
    {
        "id": 1048213,
        "created_date": "2026-11-03T10:15:00.000+05:00",
        "texts": {
            "en": _text(
                title="""Statement of the Ministry of Foreign Affairs of the Republic of
                Kazakhstan on the signing of the Caspian Water Security Framework""",
                slug="statement-of-the-mfa-on-the-signing-of-the-caspian-water-security-framework",
                short="""Kazakhstan welcomes the signing of the Framework by the five littoral
                states in Aktau on 2 November 2026.""",
                body="""
                The Ministry of Foreign Affairs of the Republic of Kazakhstan welcomes the
                signing of the Caspian Water Security Framework by the delegations of the five
                littoral states in Aktau on 2 November 2026.

                The document, prepared over 14 rounds of expert consultations since March 2024,
                establishes a joint mechanism for monitoring the sea level, exchanging
                hydrological data and coordinating responses to the shallowing of the northern
                Caspian.

                Kazakhstan attaches particular importance to the creation of a regional
                hydrological data centre in Aktau, which is expected to begin operating in the
                second half of 2027 with an initial budget of 4.2 million US dollars.

                The Kazakh side expresses its gratitude to all partners for their constructive
                approach and reaffirms its readiness to ensure the timely implementation of the
                agreements reached.
                """,
            ),
            "ru": _text(
                title="""Заявление Министерства иностранных дел Республики Казахстан в связи с
                подписанием Рамочного соглашения о водной безопасности Каспия""",
                slug="zayavlenie-mid-rk-v-svyazi-s-podpisaniem-ramochnogo-soglasheniya-kaspiya",
                short="""Казахстан приветствует подписание Рамочного соглашения пятью
                прикаспийскими государствами 2 ноября 2026 года в Актау.""",
                body="""
                Министерство иностранных дел Республики Казахстан приветствует подписание
                делегациями пяти прикаспийских государств Рамочного соглашения о водной
                безопасности Каспия, состоявшееся 2 ноября 2026 года в Актау.

                Документ, подготовленный в ходе 14 раундов экспертных консультаций начиная с
                марта 2024 года, учреждает совместный механизм мониторинга уровня моря, обмена
                гидрологическими данными и координации мер в связи с обмелением Северного
                Каспия.

                Казахстан придает особое значение созданию в Актау регионального центра
                гидрологических данных, который, как ожидается, начнет работу во втором
                полугодии 2027 года с первоначальным бюджетом в 4,2 млн долларов США.

                Казахстанская сторона выражает признательность всем партнерам за конструктивный
                подход и подтверждает готовность обеспечить своевременную реализацию достигнутых
                договоренностей.
                """,
            ),
            "kk": _text(
                title="""Қазақстан Республикасы Сыртқы істер министрлігінің Каспийдің су
                қауіпсіздігі туралы негіздемелік келісімге қол қойылуына байланысты
                мәлімдемесі""",
                slug="qr-sim-nin-kaspiydin-su-qauipsizdigi-turaly-kelisimge-baylanysty-malimdemesi",
                short="""Қазақстан 2026 жылғы 2 қарашада Ақтауда Каспий маңы бес мемлекетінің
                негіздемелік келісімге қол қойғанын құптайды.""",
                body="""
                Қазақстан Республикасы Сыртқы істер министрлігі 2026 жылғы 2 қарашада Ақтау
                қаласында Каспий маңы бес мемлекетінің делегациялары Каспийдің су қауіпсіздігі
                туралы негіздемелік келісімге қол қойғанын құптайды.

                2024 жылдың наурыз айынан бері сарапшылардың 14 кезеңдік консультациясы
                барысында әзірленген құжат теңіз деңгейін бақылаудың, гидрологиялық деректермен
                алмасудың және Солтүстік Каспийдің тартылуына байланысты шараларды
                үйлестірудің бірлескен тетігін белгілейді.

                Қазақстан Ақтауда 2027 жылдың екінші жартысында 4,2 млн АҚШ доллары көлеміндегі
                бастапқы бюджетпен жұмысын бастайды деп күтілетін өңірлік гидрологиялық деректер
                орталығын құруға ерекше мән береді.

                Қазақстан тарапы барлық серіктестерге сындарлы көзқарасы үшін алғысын білдіріп,
                қол жеткізілген уағдаластықтарды уақтылы іске асыруға дайын екенін растайды.
                """,
            ),
        },
    },
    {
        "id": 1048219,
        "created_date": "2026-11-06T16:40:00.000+05:00",
        "texts": {
            "en": _text(
                title="""Comment of the Official Representative of the MFA of the Republic of
                Kazakhstan on the situation of Kazakh citizens at Frankfurt Airport""",
                slug="comment-of-the-mfa-spokesperson-on-kazakh-citizens-at-frankfurt-airport",
                short="""The Consulate General in Frankfurt am Main is assisting 137 citizens of
                Kazakhstan affected by flight cancellations.""",
                body="""
                In connection with the mass cancellation of flights at Frankfurt Airport caused
                by the strike of ground handling staff on 5–6 November 2026, the Consulate
                General of the Republic of Kazakhstan in Frankfurt am Main is in constant contact
                with the airport administration and the airlines.

                According to the information available, 137 citizens of Kazakhstan, including
                22 children, were unable to continue their journey to Astana and Almaty. All of
                them have been provided with hotel accommodation at the expense of the carriers.

                Consular officers are on duty at the airport around the clock. Two additional
                flights to Almaty are scheduled for 7 November at 09:30 and 14:10 local time.

                Citizens who need assistance are asked to contact the duty phone of the
                Consulate General: +49 69 9753 8310.
                """,
            ),
            "ru": _text(
                title="""Комментарий официального представителя МИД Республики Казахстан в связи
                с ситуацией с гражданами Казахстана в аэропорту Франкфурта""",
                slug="kommentariy-predstavitelya-mid-o-grazhdanah-v-aeroportu-frankfurta",
                short="""Генеральное консульство во Франкфурте-на-Майне оказывает содействие 137
                гражданам Казахстана, пострадавшим от отмены рейсов.""",
                body="""
                В связи с массовой отменой рейсов в аэропорту Франкфурта, вызванной забастовкой
                наземного персонала 5–6 ноября 2026 года, Генеральное консульство Республики
                Казахстан во Франкфурте-на-Майне находится на постоянной связи с администрацией
                аэропорта и авиакомпаниями.

                По имеющейся информации, 137 граждан Казахстана, в том числе 22 ребенка, не
                смогли продолжить путь в Астану и Алматы. Все они обеспечены размещением в
                гостиницах за счет перевозчиков.

                Сотрудники консульской службы круглосуточно дежурят в аэропорту. На 7 ноября
                запланированы два дополнительных рейса в Алматы — в 09:30 и 14:10 по местному
                времени.

                Гражданам, нуждающимся в помощи, просьба обращаться по телефону дежурного
                Генерального консульства: +49 69 9753 8310.
                """,
            ),
            "kk": _text(
                title="""ҚР СІМ ресми өкілінің Франкфурт әуежайындағы Қазақстан азаматтарының
                жағдайына қатысты түсініктемесі""",
                slug="qr-sim-resmi-okilinin-frankfurt-auezhayyna-qatysty-tusiniktemesi",
                short="""Майндағы Франкфурттағы Бас консулдық рейстердің тоқтатылуынан зардап
                шеккен Қазақстанның 137 азаматына көмек көрсетуде.""",
                body="""
                2026 жылғы 5–6 қарашада жердегі қызмет көрсету персоналының ереуіліне байланысты
                Франкфурт әуежайында рейстердің жаппай тоқтатылуына орай Қазақстан
                Республикасының Майндағы Франкфурттағы Бас консулдығы әуежай әкімшілігімен және
                әуе компанияларымен тұрақты байланыста.

                Қолда бар ақпаратқа сәйкес, Қазақстанның 137 азаматы, оның ішінде 22 бала,
                Астана мен Алматыға сапарын жалғастыра алмады. Олардың барлығы
                тасымалдаушылардың есебінен қонақүйлерге орналастырылды.

                Консулдық қызмет қызметкерлері әуежайда тәулік бойы кезекшілік атқаруда.
                7 қарашаға Алматыға жергілікті уақытпен сағат 09:30 және 14:10-да екі қосымша
                рейс жоспарланған.

                Көмекке мұқтаж азаматтардан Бас консулдықтың кезекші телефонына хабарласуды
                сұраймыз: +49 69 9753 8310.
                """,
            ),
        },
    },
    {
        "id": 1048224,
        "created_date": "2026-11-10T11:00:00.000+05:00",
        "texts": {
            "en": _text(
                title="Briefing of the MFA spokesperson Dauren Seitkali, 10 November 2026",
                slug="briefing-of-the-mfa-spokesperson-dauren-seitkali-10-november-2026",
                short="""Upcoming visits, preparations for the Astana Water Dialogue and consular
                statistics for October.""",
                body="""
                On 10 November 2026, the Official Representative of the Ministry of Foreign
                Affairs of the Republic of Kazakhstan Dauren Seitkali held a regular briefing for
                representatives of domestic and foreign media.

                The spokesperson informed that on 17–18 November Astana will host the Astana
                Water Dialogue, bringing together more than 600 participants from 48 countries,
                including 11 ministers responsible for water resources.

                Speaking about consular work, Dauren Seitkali noted that in October 2026 the
                foreign missions of Kazakhstan issued 18,420 visas and provided consular
                assistance to 312 citizens abroad, 41 of whom were repatriated.

                Answering a question about the new electronic queue at the Consular Department
                in Astana, the spokesperson explained that the average waiting time had been
                reduced from 35 to 12 minutes.

                The full transcript of the briefing is available at the link:
                <a href="/uploads/2026/11/10/briefing_10112026_en.pdf">Transcript of the
                briefing (PDF, 412 KB)</a>.
                """,
            ),
            "ru": _text(
                title="""Брифинг официального представителя МИД Даурена Сейткали, 10 ноября
                2026 года""",
                slug="brifing-oficialnogo-predstavitelya-mid-daurena-seytkali-10-noyabrya-2026",
                short="""Предстоящие визиты, подготовка к Астанинскому водному диалогу и
                консульская статистика за октябрь.""",
                body="""
                10 ноября 2026 года официальный представитель Министерства иностранных дел
                Республики Казахстан Даурен Сейткали провел очередной брифинг для представителей
                отечественных и зарубежных СМИ.

                Спикер сообщил, что 17–18 ноября в Астане состоится Астанинский водный диалог, в
                котором примут участие более 600 человек из 48 стран, в том числе 11 министров,
                ответственных за водные ресурсы.

                Говоря о консульской работе, Даурен Сейткали отметил, что в октябре 2026 года
                загранучреждения Казахстана выдали 18 420 виз и оказали консульское содействие
                312 гражданам за рубежом, 41 из которых был репатриирован.

                Отвечая на вопрос о новой электронной очереди в Консульском департаменте в
                Астане, спикер пояснил, что среднее время ожидания сократилось с 35 до 12 минут.

                Полная стенограмма брифинга доступна по ссылке:
                <a href="/uploads/2026/11/10/briefing_10112026_ru.pdf">Стенограмма брифинга
                (PDF, 430 КБ)</a>.
                """,
            ),
            "kk": _text(
                title="СІМ ресми өкілі Дәурен Сейтқалидың брифингі, 2026 жылғы 10 қараша",
                slug="sim-resmi-okili-dauren-seytqalidyn-brifingi-2026-zhylgy-10-qarasha",
                short="""Алдағы сапарлар, Астана су диалогына дайындық және қазан айындағы
                консулдық статистика.""",
                body="""
                2026 жылғы 10 қарашада Қазақстан Республикасы Сыртқы істер министрлігінің ресми
                өкілі Дәурен Сейтқали отандық және шетелдік бұқаралық ақпарат құралдарының
                өкілдері үшін кезекті брифинг өткізді.

                Спикер 17–18 қарашада Астанада Астана су диалогы өтетінін хабарлады. Оған 48
                елден 600-ден астам адам, оның ішінде су ресурстарына жауапты 11 министр
                қатысады.

                Консулдық жұмыс туралы айта келе, Дәурен Сейтқали 2026 жылғы қазанда
                Қазақстанның шетелдегі мекемелері 18 420 виза бергенін және шетелдегі 312
                азаматқа консулдық көмек көрсеткенін, олардың 41-і елге қайтарылғанын атап өтті.

                Астанадағы Консулдық департаменттегі жаңа электрондық кезек туралы сұраққа жауап
                бере отырып, спикер күтудің орташа уақыты 35 минуттан 12 минутқа дейін
                қысқарғанын түсіндірді.

                Брифингтің толық стенограммасы сілтеме бойынша қолжетімді:
                <a href="/uploads/2026/11/10/briefing_10112026_kk.pdf">Брифинг стенограммасы
                (PDF, 425 КБ)</a>.
                """,
            ),
        },
    },
    {
        "id": 1048230,
        "created_date": "2026-11-12T15:30:00.000+05:00",
        "texts": {
            "en": _text(
                title="""Foreign Minister of Kazakhstan Berik Tulegenov met with Minister for
                Foreign Affairs of Finland Elina Saarinen""",
                slug="foreign-minister-of-kazakhstan-berik-tulegenov-met-with-minister-of-finland",
                short="""The ministers discussed trade, the green energy partnership and
                preparations for the intergovernmental commission.""",
                body="""
                On 12 November 2026, Minister of Foreign Affairs of the Republic of Kazakhstan
                Berik Tulegenov held talks with Minister for Foreign Affairs of the Republic of
                Finland Elina Saarinen, who is in Astana on an official visit.

                The parties noted the positive dynamics of bilateral trade, which grew by 17.4%
                in January–September 2026 and reached 386 million US dollars. Particular
                attention was paid to cooperation in green hydrogen, mining equipment and
                education.

                The ministers agreed to hold the 6th meeting of the Kazakh-Finnish
                Intergovernmental Commission on Economic Cooperation in Helsinki in the first
                quarter of 2027.

                Following the talks, a Memorandum on cooperation between the diplomatic
                academies of the two countries was signed.
                """,
            ),
            "ru": _text(
                title="""Министр иностранных дел Казахстана Берик Тулегенов встретился с
                Министром иностранных дел Финляндии Элиной Сааринен""",
                slug="ministr-inostrannyh-del-berik-tulegenov-vstretilsya-s-ministrom-finlyandii",
                short="""Министры обсудили торговлю, партнерство в области зеленой энергетики и
                подготовку к заседанию межправкомиссии.""",
                body="""
                12 ноября 2026 года Министр иностранных дел Республики Казахстан Берик Тулегенов
                провел переговоры с Министром иностранных дел Финляндской Республики Элиной
                Сааринен, находящейся в Астане с официальным визитом.

                Стороны отметили положительную динамику двусторонней торговли, которая в
                январе–сентябре 2026 года выросла на 17,4% и достигла 386 млн долларов США.
                Особое внимание было уделено сотрудничеству в сферах зеленого водорода,
                горнодобывающего оборудования и образования.

                Министры договорились провести 6-е заседание Казахстанско-финляндской
                межправительственной комиссии по экономическому сотрудничеству в Хельсинки в
                первом квартале 2027 года.

                По итогам переговоров подписан Меморандум о сотрудничестве между
                дипломатическими академиями двух стран.
                """,
            ),
            "kk": _text(
                title="""Қазақстанның Сыртқы істер министрі Берік Төлегенов Финляндияның Сыртқы
                істер министрі Элина Сааринен ханыммен кездесті""",
                slug="syrtqy-ister-ministri-berik-tolegenov-finlyandiya-ministrimen-kezdesti",
                short="""Министрлер сауда, жасыл энергетика саласындағы әріптестік және
                үкіметаралық комиссия отырысына дайындық мәселелерін талқылады.""",
                body="""
                2026 жылғы 12 қарашада Қазақстан Республикасының Сыртқы істер министрі Берік
                Төлегенов Астанаға ресми сапармен келген Финляндия Республикасының Сыртқы істер
                министрі Элина Сааринен ханыммен келіссөздер жүргізді.

                Тараптар 2026 жылғы қаңтар–қыркүйекте 17,4%-ға өсіп, 386 млн АҚШ долларына
                жеткен екіжақты сауданың оң серпінін атап өтті. Жасыл сутегі, тау-кен
                жабдықтары және білім беру салаларындағы ынтымақтастыққа ерекше назар аударылды.

                Министрлер Қазақстан-Финляндия экономикалық ынтымақтастық жөніндегі
                үкіметаралық комиссиясының 6-отырысын 2027 жылдың бірінші тоқсанында Хельсинкиде
                өткізуге уағдаласты.

                Келіссөздер қорытындысы бойынша екі елдің дипломатиялық академиялары арасындағы
                ынтымақтастық туралы меморандумға қол қойылды.
                """,
            ),
        },
    },
    {
        "id": 1048236,
        "created_date": "2026-11-16T09:45:00.000+05:00",
        "texts": {
            "en": _text(
                title="""Statement of the Ministry of Foreign Affairs of the Republic of
                Kazakhstan on the adoption of the UN General Assembly resolution on the Aral Sea
                basin""",
                slug="statement-of-the-mfa-on-the-unga-resolution-on-the-aral-sea-basin",
                short="""The resolution proclaiming 2027–2036 the International Decade for the
                Restoration of the Aral Sea Basin was adopted by consensus.""",
                body="""
                The Ministry of Foreign Affairs of the Republic of Kazakhstan welcomes the
                adoption by the 81st session of the UN General Assembly of the resolution
                "International Decade for the Restoration of the Aral Sea Basin, 2027–2036",
                initiated by Kazakhstan.

                The resolution was adopted by consensus on 15 November 2026 and co-sponsored by
                64 Member States. It calls for the mobilization of international financing for
                the restoration of ecosystems, the improvement of water use efficiency and
                support for the population of the Aral Sea region.

                Since the completion of the Kokaral dam, the water level in the Northern Aral
                Sea has risen by more than 3 metres, and the annual fish catch has exceeded
                8,000 tonnes. Kazakhstan is ready to share this experience with all interested
                countries.

                The text of the resolution is published on the official website of the United
                Nations: <a href="https://www.un.org/en/ga/" target="_blank"
                rel="noopener">www.un.org</a>.
                """,
            ),
            "ru": _text(
                title="""Заявление Министерства иностранных дел Республики Казахстан в связи с
                принятием резолюции Генеральной Ассамблеи ООН по бассейну Аральского моря""",
                slug="zayavlenie-mid-rk-v-svyazi-s-prinyatiem-rezolyucii-ga-oon-po-aralskomu-moryu",
                short="""Резолюция, провозглашающая 2027–2036 годы Международным десятилетием
                восстановления бассейна Аральского моря, принята консенсусом.""",
                body="""
                Министерство иностранных дел Республики Казахстан приветствует принятие 81-й
                сессией Генеральной Ассамблеи ООН резолюции «Международное десятилетие
                восстановления бассейна Аральского моря, 2027–2036 годы», инициированной
                Казахстаном.

                Резолюция принята консенсусом 15 ноября 2026 года, ее соавторами выступили 64
                государства-члена. Документ призывает мобилизовать международное финансирование
                для восстановления экосистем, повышения эффективности водопользования и
                поддержки населения Приаралья.

                После завершения строительства Кокаральской плотины уровень воды в Северном
                Аральском море поднялся более чем на 3 метра, а годовой вылов рыбы превысил
                8 тысяч тонн. Казахстан готов делиться этим опытом со всеми заинтересованными
                странами.

                Текст резолюции опубликован на официальном сайте Организации Объединенных Наций:
                <a href="https://www.un.org/ru/ga/" target="_blank" rel="noopener">www.un.org</a>.
                """,
            ),
            "kk": _text(
                title="""Қазақстан Республикасы Сыртқы істер министрлігінің БҰҰ Бас
                Ассамблеясының Арал теңізі бассейні жөніндегі қарарының қабылдануына байланысты
                мәлімдемесі""",
                slug="qr-sim-nin-aral-tenizi-turaly-bub-qararyna-baylanysty-malimdemesi",
                short="""2027–2036 жылдарды Арал теңізі бассейнін қалпына келтірудің халықаралық
                онжылдығы деп жариялаған қарар консенсус арқылы қабылданды.""",
                body="""
                Қазақстан Республикасы Сыртқы істер министрлігі БҰҰ Бас Ассамблеясының
                81-сессиясында Қазақстанның бастамасымен әзірленген «Арал теңізі бассейнін
                қалпына келтірудің халықаралық онжылдығы, 2027–2036 жылдар» қарарының
                қабылдануын құптайды.

                Қарар 2026 жылғы 15 қарашада консенсус арқылы қабылданды, оның бірлескен
                авторлары 64 мүше мемлекет болды. Құжат экожүйелерді қалпына келтіруге, суды
                пайдалану тиімділігін арттыруға және Арал өңірі халқын қолдауға халықаралық
                қаржыландыруды жұмылдыруға шақырады.

                Көкарал бөгетінің құрылысы аяқталғаннан кейін Солтүстік Арал теңізіндегі су
                деңгейі 3 метрден астам көтеріліп, жыл сайынғы балық аулау көлемі 8 мың тоннадан
                асты. Қазақстан бұл тәжірибемен барлық мүдделі елдермен бөлісуге дайын.

                Қарардың мәтіні Біріккен Ұлттар Ұйымының ресми сайтында жарияланған:
                <a href="https://www.un.org/en/ga/" target="_blank" rel="noopener">www.un.org</a>.
                """,
            ),
        },
    },
    {
        "id": 1048241,
        "created_date": "2026-11-19T12:20:00.000+05:00",
        "texts": {
            "en": _text(
                title="""Comment of the Official Representative of the MFA of the Republic of
                Kazakhstan on the extension of the visa-free period of stay""",
                slug="comment-of-the-official-representative-of-the-mfa-on-the-visa-free-period",
                short="""From 1 January 2027, citizens of 12 countries will be able to stay in
                Kazakhstan without a visa for up to 45 days.""",
                body="""
                In accordance with Government Decree No. 947 of 18 November 2026, from 1 January
                2027 the period of visa-free stay in the Republic of Kazakhstan for citizens of
                12 countries will be increased from 30 to 45 calendar days.

                The list includes, among others, Australia, Japan, the Republic of Korea,
                Singapore and the member states of the Gulf Cooperation Council. The measure is
                aimed at developing tourism and business contacts: in 2025 citizens of these
                states made over 410,000 trips to Kazakhstan.

                Foreign citizens planning to stay longer than 45 days, as well as those
                travelling for work or study, must obtain the appropriate visa in advance.
                Electronic visas are issued through the portal <a href="https://www.vmp.gov.kz"
                target="_blank" rel="noopener">vmp.gov.kz</a>.
                """,
            ),
            "ru": _text(
                title="""Комментарий официального представителя МИД Республики Казахстан в связи
                с увеличением срока безвизового пребывания""",
                slug="kommentariy-oficialnogo-predstavitelya-mid-o-sroke-bezvizovogo-prebyvaniya",
                short="""С 1 января 2027 года граждане 12 стран смогут находиться в Казахстане
                без визы до 45 дней.""",
                body="""
                В соответствии с постановлением Правительства от 18 ноября 2026 года № 947 с
                1 января 2027 года срок безвизового пребывания в Республике Казахстан для
                граждан 12 стран будет увеличен с 30 до 45 календарных дней.

                В перечень вошли, в частности, Австралия, Япония, Республика Корея, Сингапур и
                государства — члены Совета сотрудничества арабских государств Персидского
                залива. Мера направлена на развитие туризма и деловых контактов: в 2025 году
                граждане этих государств совершили более 410 тысяч поездок в Казахстан.

                Иностранным гражданам, планирующим пребывание свыше 45 дней, а также следующим с
                целью работы или учебы, необходимо заблаговременно получить соответствующую
                визу. Электронные визы оформляются через портал <a href="https://www.vmp.gov.kz"
                target="_blank" rel="noopener">vmp.gov.kz</a>.
                """,
            ),
            "kk": _text(
                title="""ҚР СІМ ресми өкілінің визасыз болу мерзімінің ұзартылуына қатысты
                түсініктемесі""",
                slug="qr-sim-resmi-okilinin-vizasyz-bolu-merzimine-qatysty-tusiniktemesi",
                short="""2027 жылғы 1 қаңтардан бастап 12 елдің азаматтары Қазақстанда визасыз
                45 күнге дейін бола алады.""",
                body="""
                Үкіметтің 2026 жылғы 18 қарашадағы № 947 қаулысына сәйкес 2027 жылғы 1 қаңтардан
                бастап 12 елдің азаматтары үшін Қазақстан Республикасында визасыз болу мерзімі
                30 күнтізбелік күннен 45 күнге дейін ұзартылады.

                Тізімге, атап айтқанда, Аустралия, Жапония, Корея Республикасы, Сингапур және
                Парсы шығанағы араб мемлекеттерінің ынтымақтастық кеңесіне мүше мемлекеттер
                енді. Бұл шара туризм мен іскерлік байланыстарды дамытуға бағытталған: 2025 жылы
                осы мемлекеттердің азаматтары Қазақстанға 410 мыңнан астам сапар жасады.

                45 күннен артық болуды жоспарлаған, сондай-ақ жұмыс немесе оқу мақсатында
                келетін шетел азаматтары тиісті визаны алдын ала алуы қажет. Электрондық
                визалар <a href="https://www.vmp.gov.kz" target="_blank"
                rel="noopener">vmp.gov.kz</a> порталы арқылы ресімделеді.
                """,
            ),
        },
    },
    {
        "id": 1048247,
        "created_date": "2026-11-23T10:00:00.000+05:00",
        "texts": {
            "en": _text(
                title="Honorary Consulate of the Republic of Kazakhstan opened in Porto",
                slug="honorary-consulate-of-the-republic-of-kazakhstan-opened-in-porto",
                short="""The consular district covers the northern regions of Portugal, home to
                about 300 citizens of Kazakhstan.""",
                body="""
                On 23 November 2026, the Honorary Consulate of the Republic of Kazakhstan was
                officially opened in Porto. The ceremony was attended by the Ambassador of
                Kazakhstan to Portugal Aliya Nurmukhanova, representatives of the municipality
                and the business community of the city.

                Portuguese entrepreneur Rui Carvalho Meireles, who has been developing trade with
                the countries of Central Asia for more than 15 years, was appointed Honorary
                Consul.

                The consular district covers the northern regions of Portugal, home to about 300
                citizens of Kazakhstan. The Honorary Consul will promote trade, investment and
                cultural ties, with a focus on logistics through the port of Leixões.
                """,
            ),
            "ru": _text(
                title="В Порту открылось Почетное консульство Республики Казахстан",
                slug="v-portu-otkrylos-pochetnoe-konsulstvo-respubliki-kazahstan",
                short="""Консульский округ охватывает северные регионы Португалии, где проживают
                около 300 граждан Казахстана.""",
                body="""
                23 ноября 2026 года в Порту состоялось официальное открытие Почетного
                консульства Республики Казахстан. В церемонии приняли участие Посол Казахстана
                в Португалии Алия Нурмуханова, представители муниципалитета и деловых кругов
                города.

                Почетным консулом назначен португальский предприниматель Руи Карвалью Мейрелеш,
                более 15 лет развивающий торговлю со странами Центральной Азии.

                Консульский округ охватывает северные регионы Португалии, где проживают около
                300 граждан Казахстана. Почетный консул будет содействовать развитию торговых,
                инвестиционных и культурных связей с акцентом на логистику через порт Лейшойнш.
                """,
            ),
            "kk": _text(
                title="Порту қаласында Қазақстан Республикасының Құрметті консулдығы ашылды",
                slug="portu-qalasynda-qazaqstan-respublikasynyn-qurmetti-konsuldygy-ashyldy",
                short="""Консулдық округ Португалияның солтүстік өңірлерін қамтиды, онда
                Қазақстанның 300-ге жуық азаматы тұрады.""",
                body="""
                2026 жылғы 23 қарашада Порту қаласында Қазақстан Республикасының Құрметті
                консулдығының ресми ашылу рәсімі өтті. Рәсімге Қазақстанның Португалиядағы
                Елшісі Әлия Нұрмұханова, қала муниципалитетінің және іскер топтардың өкілдері
                қатысты.

                Құрметті консул болып Орталық Азия елдерімен сауданы 15 жылдан астам уақыт бойы
                дамытып келе жатқан португалиялық кәсіпкер Руй Карвалью Мейрелеш тағайындалды.

                Консулдық округ Португалияның солтүстік өңірлерін қамтиды, онда Қазақстанның
                300-ге жуық азаматы тұрады. Құрметті консул Лейшойнш порты арқылы логистикаға
                басымдық бере отырып, сауда, инвестициялық және мәдени байланыстарды дамытуға
                жәрдемдеседі.
                """,
            ),
        },
    },
    {
        "id": 1048252,
        "created_date": "2026-11-24T17:05:00.000+05:00",
        "texts": {
            "en": _text(
                title="Kazakhstan sends humanitarian aid to the Republic of Tajikistan",
                slug="kazakhstan-sends-humanitarian-aid-to-the-republic-of-tajikistan",
                short="""1,250 tonnes of food, medicines and school furniture will be delivered
                to the areas affected by mudflows.""",
                body="""
                By decision of the Government of the Republic of Kazakhstan, humanitarian aid is
                being sent to the Republic of Tajikistan to support the population of the Rasht
                valley affected by the mudflows of 14–15 November 2026.

                The cargo, with a total weight of 1,250 tonnes, includes flour, vegetable oil,
                sugar, medicines and furniture for six schools. The aid will be delivered by 38
                railway wagons and 12 trucks; the first convoy left Shymkent on 24 November.

                The delivery is coordinated by the Kazakhstan Agency for International
                Development KazAID together with the Ministry of Emergency Situations and the
                Embassy of Kazakhstan in Dushanbe.

                Kazakhstan expresses its solidarity with the fraternal Tajik people and stands
                ready to provide further assistance if necessary.
                """,
            ),
            "ru": _text(
                title="Казахстан направляет гуманитарную помощь Республике Таджикистан",
                slug="kazahstan-napravlyaet-gumanitarnuyu-pomoshch-respublike-tadzhikistan",
                short="""В пострадавшие от селевых потоков районы будут доставлены 1 250 тонн
                продовольствия, медикаментов и школьной мебели.""",
                body="""
                По решению Правительства Республики Казахстан в Республику Таджикистан
                направляется гуманитарная помощь для поддержки населения Раштской долины,
                пострадавшего от селевых потоков 14–15 ноября 2026 года.

                В состав груза общим весом 1 250 тонн входят мука, растительное масло, сахар,
                медикаменты, а также мебель для шести школ. Помощь будет доставлена 38
                железнодорожными вагонами и 12 грузовыми автомобилями; первая колонна вышла из
                Шымкента 24 ноября.

                Доставку координирует Казахстанское агентство международного развития KazAID
                совместно с Министерством по чрезвычайным ситуациям и Посольством Казахстана в
                Душанбе.

                Казахстан выражает солидарность братскому таджикскому народу и готов при
                необходимости оказать дополнительное содействие.
                """,
            ),
            "kk": _text(
                title="Қазақстан Тәжікстан Республикасына гуманитарлық көмек жібереді",
                slug="qazaqstan-tazhikstan-respublikasyna-gumanitarlyq-komek-zhiberedi",
                short="""Сел тасқынынан зардап шеккен аудандарға 1 250 тонна азық-түлік,
                дәрі-дәрмек және мектеп жиһазы жеткізіледі.""",
                body="""
                Қазақстан Республикасы Үкіметінің шешімімен 2026 жылғы 14–15 қарашадағы сел
                тасқынынан зардап шеккен Рашт алқабының тұрғындарын қолдау үшін Тәжікстан
                Республикасына гуманитарлық көмек жіберілуде.

                Жалпы салмағы 1 250 тонна жүктің құрамына ұн, өсімдік майы, қант, дәрі-дәрмек,
                сондай-ақ алты мектепке арналған жиһаз кіреді. Көмек 38 темір жол вагонымен және
                12 жүк көлігімен жеткізіледі; алғашқы керуен 24 қарашада Шымкенттен шықты.

                Жеткізуді Қазақстанның халықаралық даму агенттігі KazAID Төтенше жағдайлар
                министрлігімен және Қазақстанның Душанбедегі елшілігімен бірлесіп үйлестіреді.

                Қазақстан бауырлас тәжік халқына тілектестік білдіріп, қажет болған жағдайда
                қосымша көмек көрсетуге әзір.
                """,
            ),
        },
    },
]
