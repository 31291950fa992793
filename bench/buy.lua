-- wrk script: POST /portfolio/buy of 1 SPY at an explicit price.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"symbol":"SPY","quantity":"1","price":"250.5","fee":"0.1"}'
