# What the family receives, in English. Each event has:
#   -subject  the e-mail's subject
#   -sms      the text message: it fits one segment (160 GSM-7 characters); the SMS channel drops
#             accents GSM-7 lacks and shortens the note, then the name, if it must, never the link
#             or the phones
#   -text     the start of the e-mail, with every detail
# Variables: $name (who asked for help), $link (map), $phone (the consulate's), $consulate (its
# name), $city, $ciam (the CIAM 24/7 line), $reason (safe | mistake), $note.

someone = Your family member
note = Note: { $note }

opened-subject = ALERT: { $name } asked for help
opened-sms = ALERT from { $name }: possible detention. Location: { $link } Consulate: { $phone }
opened-text = ALERT from { $name }: they pressed the Alert Button (possible detention). Location: { $link } Consulate: { $consulate } { $phone }

location-updated-subject = New location for { $name }
location-updated-sms = { $name }: new location { $link }
location-updated-text = { location-updated-sms }

cancelled-subject = { $name } cancelled the alert
cancelled-sms = { $name } cancelled the alert: { $reason ->
        [mistake] it was pressed by mistake
       *[safe] they are safe
    }.
cancelled-text = { cancelled-sms }

duress-cancelled-subject = URGENT: { $name } cancelled the alert under pressure
duress-cancelled-sms = URGENT: { $name } cancelled with their emergency PIN: may be under pressure. STILL ACTIVE. Do not text them. Consulate: { $phone }
duress-cancelled-text = URGENT: { $name } cancelled the alert with their emergency PIN: they may be under pressure. The alert is STILL ACTIVE. Do not reply to their phone about this. Consulate: { $phone }

duress-signalled-subject = URGENT: { $name } used their emergency PIN
duress-signalled-sms = URGENT: { $name } used their emergency PIN: may be under pressure. The alert is ACTIVE. Do not text them. Consulate: { $phone }
duress-signalled-text = URGENT: { $name } used their emergency PIN: they may be under pressure. The alert is ACTIVE. Do not reply to their phone about this. Consulate: { $phone }

acknowledged-subject = The consulate is on { $name }'s alert
acknowledged-sms = The Mexican consulate in { $city } is on { $name }'s alert.
acknowledged-text = { acknowledged-sms }

escalated-subject = { $name }'s alert was escalated
escalated-sms = The consulate has not yet answered { $name }'s alert: the CIAM 24/7 centre ({ $ciam }) and another consulate were told.
escalated-text = { escalated-sms }

resolved-subject = { $name }'s alert closed by the consulate
resolved-sms = The Mexican consulate in { $city } closed { $name }'s alert.
resolved-text = { resolved-sms }

# After the start of the e-mail, in this order. $accuracy is " (±12 m)" or nothing.
details-location = Location{ $accuracy }: { $link }
details-consulate = Consulate: { $consulate }, { $address }
details-phone = Phone: { $phone }
details-ciam = CIAM 24/7 line: { $ciam }
details-why = You receive this because { $name } listed you as a contact in the Alert Button.

# WhatsApp: the approved templates' own words live with Meta (see infra/README.md); here only what
# fills a template's blank and is words.
whatsapp-reason = { $reason ->
        [mistake] it was pressed by mistake
       *[safe] they are safe
    }

# The one text a new phone contact receives when the person adds them (one SMS segment; the name
# is shortened if it must be). $name (who added them).
consent-request-sms = { $name } added you to Alert Button: texts only if they raise an alert, e.g. if detained. Msg&data rates may apply. STOP to opt out, HELP for help.
