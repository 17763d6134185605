"""The students' pages in English and Spanish: plain dictionaries, no JavaScript, no cookie."""

from __future__ import annotations

from collections.abc import Mapping

from flask import request

LANGUAGES = ("en", "es")

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "site_name": "Anonymous tip line",
        "skip": "Skip to main content",
        "switch_to": "Español",
        "switch_lang": "es",
        "danger": "If someone is in danger right now, call 911.",
        "crisis": "If you are thinking about hurting yourself, call or text 988.",
        "monitored": "Staff read this line {hours} ({timezone}).",
        "monitored_after": "At other times your tip may not be read until the line is monitored "
        "again. Do not wait: call 911 in an emergency.",
        "unmonitored": "This line is not monitored at all hours. Call 911 in an emergency.",
        "tip_title": "Send a tip to {school}",
        "tip_intro": "You do not need to give your name. This site does not record your IP "
        "address and uses no tracking.",
        "break_glass_note": "If you text this school's tip line instead: in an emergency, two "
        "school administrators together can see the number you text from.",
        "legend_tip": "Your tip",
        "label_text": "What do you want to tell us?",
        "hint_text": "Say what is happening, where and when, and who is involved if you know.",
        "label_file": "Photo or PDF (optional)",
        "hint_file": "JPEG, PNG, GIF, WebP, HEIC or PDF, up to 5 MB. Photos can carry hidden "
        "details such as where they were taken.",
        "submit_tip": "Send tip",
        "error_title": "Error",
        "error_summary": "There is a problem",
        "err_text_required": "Write your tip before sending it.",
        "err_file_type": "The file must be a JPEG, PNG, GIF, WebP or HEIC image, or a PDF.",
        "err_file_size": "The file is too large: the limit is 5 MB.",
        "receipt_title": "Your tip was sent",
        "receipt_write": "Write down this receipt code and passphrase now. They are shown only "
        "once, and nobody can look them up for you.",
        "receipt_use": "With them you can read replies from school staff and add information. "
        "Keep them private: anyone who has both can read your conversation.",
        "receipt_file": "Your file is being checked before staff can open it. If it cannot be "
        "checked safely, staff see your tip without it.",
        "receipt_code": "Receipt code",
        "receipt_pass": "Passphrase",
        "receipt_next": "When you have written them down, check for replies here:",
        "followup_link": "Check on a tip",
        "followup_title": "Check on your tip",
        "followup_intro": "Enter the receipt code and passphrase you got when you sent your tip.",
        "legend_receipt": "Your receipt",
        "label_code": "Receipt code",
        "hint_code": "16 letters and numbers, for example 7K3M-QX2P-9D4R-HC6W. Dashes and spaces "
        "do not matter.",
        "label_pass": "Passphrase",
        "hint_pass": "Six words, separated by spaces.",
        "label_message_optional": "Add a message (optional)",
        "submit_followup": "Open",
        "err_code_required": "Enter your receipt code.",
        "err_pass_required": "Enter your passphrase.",
        "err_login": "That receipt code and passphrase do not open a tip. Check both and try "
        "again.",
        "limited_title": "Too many attempts",
        "limited_body": "For your safety, checking on tips is paused after several wrong "
        "attempts. Try again in {minutes} minutes.",
        "form_used_title": "This form was already sent",
        "form_used_body": "Nothing was saved this time: each form can be sent once. If you got a "
        "receipt code, your tip was received. To send another tip, open a new form.",
        "form_invalid_title": "The form could not be sent",
        "form_invalid_body": "Nothing was saved: the form was too old or not from this page. "
        "Open a new form and send your tip again.",
        "budget_title": "Too many tips from this browser",
        "budget_body": "Nothing was saved: this browser has sent many tips in the last hour. "
        "Try again later, or add to an earlier tip with its receipt code.",
        "new_form": "Open a new form",
        "unavailable_title": "Try again later",
        "unavailable_body": "Checking on a tip is not available right now. Please try again "
        "later. You can still send a new tip.",
        "expired": "For your safety this page timed out. Enter your receipt code and passphrase "
        "again.",
        "conversation_title": "Your conversation",
        "conversation_school": "Tip to {school}",
        "from_you": "You",
        "from_staff": "School staff",
        "no_reply": "No reply from school staff yet. Check again later.",
        "legend_reply": "Add a message",
        "label_reply": "Your message",
        "submit_reply": "Send message",
        "reply_sent": "Your message was added.",
        "err_message_required": "Write a message before sending it.",
        "done_hint": "When you are done, close this browser window.",
        "new_tip": "Send a new tip",
    },
    "es": {
        "site_name": "Línea anónima de avisos",
        "skip": "Saltar al contenido principal",
        "switch_to": "English",
        "switch_lang": "en",
        "danger": "Si alguien está en peligro ahora mismo, llama al 911.",
        "crisis": "Si estás pensando en hacerte daño, llama o envía un mensaje de texto al 988.",
        "monitored": "El personal revisa esta línea {hours} ({timezone}).",
        "monitored_after": "En otros horarios es posible que nadie lea tu aviso hasta que se "
        "vuelva a revisar la línea. No esperes: en una emergencia llama al 911.",
        "unmonitored": "Esta línea no se revisa a todas horas. En una emergencia llama al 911.",
        "tip_title": "Enviar un aviso a {school}",
        "tip_intro": "No necesitas dar tu nombre. Este sitio no guarda tu dirección IP ni usa "
        "rastreo.",
        "break_glass_note": "Si en cambio escribes a la línea de avisos de esta escuela: en una "
        "emergencia, dos administradores de la escuela juntos pueden ver el número desde el que "
        "escribes.",
        "legend_tip": "Tu aviso",
        "label_text": "¿Qué nos quieres contar?",
        "hint_text": "Cuenta qué está pasando, dónde y cuándo, y quién está involucrado si lo "
        "sabes.",
        "label_file": "Foto o PDF (opcional)",
        "hint_file": "JPEG, PNG, GIF, WebP, HEIC o PDF, hasta 5 MB. Las fotos pueden llevar datos "
        "ocultos, como el lugar donde se tomaron.",
        "submit_tip": "Enviar aviso",
        "error_title": "Error",
        "error_summary": "Hay un problema",
        "err_text_required": "Escribe tu aviso antes de enviarlo.",
        "err_file_type": "El archivo debe ser una imagen JPEG, PNG, GIF, WebP o HEIC, o un PDF.",
        "err_file_size": "El archivo es demasiado grande: el límite es 5 MB.",
        "receipt_title": "Tu aviso fue enviado",
        "receipt_write": "Anota ahora este código de recibo y esta frase de acceso. Solo se "
        "muestran una vez y nadie puede buscarlos por ti.",
        "receipt_use": "Con ellos puedes leer las respuestas del personal de la escuela y añadir "
        "información. Guárdalos en privado: quien tenga los dos puede leer tu conversación.",
        "receipt_file": "Tu archivo se revisa antes de que el personal pueda abrirlo. Si no se "
        "puede revisar con seguridad, el personal verá tu aviso sin él.",
        "receipt_code": "Código de recibo",
        "receipt_pass": "Frase de acceso",
        "receipt_next": "Cuando los hayas anotado, consulta las respuestas aquí:",
        "followup_link": "Consultar un aviso",
        "followup_title": "Consulta tu aviso",
        "followup_intro": "Escribe el código de recibo y la frase de acceso que recibiste al "
        "enviar tu aviso.",
        "legend_receipt": "Tu recibo",
        "label_code": "Código de recibo",
        "hint_code": "16 letras y números, por ejemplo 7K3M-QX2P-9D4R-HC6W. Los guiones y "
        "espacios no importan.",
        "label_pass": "Frase de acceso",
        "hint_pass": "Seis palabras separadas por espacios.",
        "label_message_optional": "Añadir un mensaje (opcional)",
        "submit_followup": "Abrir",
        "err_code_required": "Escribe tu código de recibo.",
        "err_pass_required": "Escribe tu frase de acceso.",
        "err_login": "Ese código de recibo y esa frase de acceso no abren ningún aviso. Revisa "
        "los dos e inténtalo de nuevo.",
        "limited_title": "Demasiados intentos",
        "limited_body": "Por tu seguridad, la consulta de avisos se pausa tras varios intentos "
        "fallidos. Inténtalo de nuevo en {minutes} minutos.",
        "form_used_title": "Este formulario ya se envió",
        "form_used_body": "Esta vez no se guardó nada: cada formulario se puede enviar una vez. "
        "Si recibiste un código de recibo, tu aviso llegó. Para enviar otro aviso, abre un "
        "formulario nuevo.",
        "form_invalid_title": "No se pudo enviar el formulario",
        "form_invalid_body": "No se guardó nada: el formulario era muy antiguo o no era de esta "
        "página. Abre un formulario nuevo y envía tu aviso otra vez.",
        "budget_title": "Demasiados avisos desde este navegador",
        "budget_body": "No se guardó nada: este navegador envió muchos avisos en la última hora. "
        "Inténtalo más tarde, o añade a un aviso anterior con su código de recibo.",
        "new_form": "Abrir un formulario nuevo",
        "unavailable_title": "Inténtalo más tarde",
        "unavailable_body": "La consulta de avisos no está disponible en este momento. Inténtalo "
        "más tarde. Aún puedes enviar un aviso nuevo.",
        "expired": "Por tu seguridad esta página caducó. Escribe de nuevo tu código de recibo y "
        "tu frase de acceso.",
        "conversation_title": "Tu conversación",
        "conversation_school": "Aviso a {school}",
        "from_you": "Tú",
        "from_staff": "Personal de la escuela",
        "no_reply": "Aún no hay respuesta del personal de la escuela. Vuelve a consultar más "
        "tarde.",
        "legend_reply": "Añadir un mensaje",
        "label_reply": "Tu mensaje",
        "submit_reply": "Enviar mensaje",
        "reply_sent": "Tu mensaje fue añadido.",
        "err_message_required": "Escribe un mensaje antes de enviarlo.",
        "done_hint": "Cuando termines, cierra esta ventana del navegador.",
        "new_tip": "Enviar un aviso nuevo",
    },
}


def pick_lang() -> str:
    """`?lang=` when it names a language we have, else the browser's preference, else English."""
    asked = request.args.get("lang", "")
    if asked in LANGUAGES:
        return asked
    return request.accept_languages.best_match(LANGUAGES, default="en") or "en"


def strings(lang: str) -> Mapping[str, str]:
    return TEXT.get(lang, TEXT["en"])
