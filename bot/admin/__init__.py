"""The operator's web page under ``/admin`` (issue 11): server-rendered, no JavaScript, no CDN."""
