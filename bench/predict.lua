-- wrk script: POST /predictions for SPY at horizon 5 (served from the model cache).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"symbol":"SPY","horizon_days":5}'
