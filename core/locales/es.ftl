# Lo que recibe la familia, en español. Cada evento tiene:
#   -subject  el asunto del correo
#   -sms      el SMS: cabe en un segmento (160 caracteres GSM-7); el canal SMS quita los acentos que
#             GSM-7 no tiene y acorta la nota y luego el nombre si hace falta, nunca el enlace ni
#             los teléfonos
#   -text     el comienzo del correo, con todo el detalle
# Variables: $name (quien pidió ayuda), $link (mapa), $phone (consulado), $consulate (su nombre),
# $city, $ciam (línea 24/7 del CIAM), $reason (safe | mistake), $note.

someone = Su familiar
note = Nota: { $note }

opened-subject = ALERTA: { $name } pidió ayuda
opened-sms = ALERTA de { $name }: posible detención. Ubicación: { $link } Consulado: { $phone }
opened-text = ALERTA de { $name }: pulsó el Botón de Alerta (posible detención). Ubicación: { $link } Consulado: { $consulate } { $phone }

location-updated-subject = Nueva ubicación de { $name }
location-updated-sms = { $name }: nueva ubicación { $link }
location-updated-text = { location-updated-sms }

cancelled-subject = { $name } canceló la alerta
cancelled-sms = { $name } canceló la alerta: { $reason ->
        [mistake] la alerta fue un error
       *[safe] está a salvo
    }.
cancelled-text = { cancelled-sms }

duress-cancelled-subject = URGENTE: { $name } canceló la alerta bajo presión
duress-cancelled-sms = URGENTE: { $name } canceló con su clave de emergencia: puede estar bajo presión. SIGUE ACTIVA. No le escriba. Consulado: { $phone }
duress-cancelled-text = URGENTE: { $name } canceló la alerta con su clave de emergencia: puede estar bajo presión. La alerta SIGUE ACTIVA. No responda a su teléfono sobre esto. Consulado: { $phone }

duress-signalled-subject = URGENTE: { $name } usó su clave de emergencia
duress-signalled-sms = URGENTE: { $name } usó su clave de emergencia: puede estar bajo presión. La alerta está ACTIVA. No le escriba. Consulado: { $phone }
duress-signalled-text = URGENTE: { $name } usó su clave de emergencia: puede estar bajo presión. La alerta está ACTIVA. No responda a su teléfono sobre esto. Consulado: { $phone }

acknowledged-subject = El consulado atiende la alerta de { $name }
acknowledged-sms = El consulado en { $city } está atendiendo la alerta de { $name }.
acknowledged-text = { acknowledged-sms }

escalated-subject = La alerta de { $name } se escaló
escalated-sms = El consulado aún no responde a la alerta de { $name }: se avisó al centro 24/7 del CIAM ({ $ciam }) y a otro consulado.
escalated-text = { escalated-sms }

resolved-subject = Alerta de { $name } cerrada por el consulado
resolved-sms = El consulado en { $city } cerró la alerta de { $name }.
resolved-text = { resolved-sms }

# Después del comienzo del correo, en este orden. $accuracy es « (±12 m) » o nada.
details-location = Ubicación{ $accuracy }: { $link }
details-consulate = Consulado: { $consulate }, { $address }
details-phone = Teléfono: { $phone }
details-ciam = Línea 24/7 del CIAM: { $ciam }
details-why = Usted recibe este mensaje porque { $name } le registró como contacto en el Botón de Alerta.

# WhatsApp: las palabras de las plantillas aprobadas están en Meta (ver infra/README.md); aquí solo
# lo que llena un espacio de una plantilla y es una frase.
whatsapp-reason = { $reason ->
        [mistake] la alerta fue un error
       *[safe] está a salvo
    }

# El único SMS que recibe un contacto nuevo cuando la persona lo agrega (un segmento; el nombre se
# acorta si hace falta). $name (quien lo agregó).
consent-request-sms = { $name } le agregó a Botón de Alerta: SMS solo si activa una alerta, p.ej. si le detienen. Pueden aplicar tarifas de msj/datos. STOP: salir, HELP: ayuda.
