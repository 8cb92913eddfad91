#!/bin/sh
# Fetch the page from the data service (alias `data` on the backend network), then fetch it
# again every second so a new greeting shows without a restart, and serve it on port 80.
set -e
mkdir -p /www
wget -q -O /www/index.html http://data:8000/index.html
(while sleep 1; do
  wget -q -O /www/next.html http://data:8000/index.html && mv /www/next.html /www/index.html
done) &
exec httpd -f -p 80 -h /www
