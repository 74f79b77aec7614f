pub mod fake;

pub trait NowTs {
    fn now_ts(&self) -> i64;
}

impl NowTs for bdc_http::ManualClock {
    fn now_ts(&self) -> i64 {
        use bdc_http::Clock;
        self.now().timestamp()
    }
}
