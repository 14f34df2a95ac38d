// Deployment settings. The runner serves this empty: the API is on the same origin. A static
// deployment replaces it, e.g. { apiBase: 'https://api.example.org', cognito: { domain, clientId } }.
window.ALERT_BUTTON_CONFIG = {};
