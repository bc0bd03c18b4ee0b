//! NVTX range ends through CUPTI's callbacks, against the CUPTI test double: every
//! range flavour (push/pop, start/end; `A`, `W`, `Ex`; global and named domains;
//! registered strings) ends in one `Control::RangeEnd` with its name, and pops
//! pair with pushes per thread and per domain.
//!
//! The double invokes the tracer's callback with the parameter structs of
//! `generated_nvtx_meta.h`, as CUPTI does once an NVTX call returned.

mod double;

use std::ffi::{CStr, c_char};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use cupti_sys::sys::CUpti_nvtx_api_trace_cbid as Cbid;
use cupti_sys::sys::*;
use cutrace_tracer::{Activity, Control, Profiler, ProfilerConfig};
use double::{Collect, Double, warnings, zero};

/// A profiler following NVTX, whose handler logs every range end and steps on
/// names starting with `step`, as `--nvtx-step 'step*'` does.
struct Followed {
    _serial: MutexGuard<'static, ()>,
    cupti: &'static Double,
    profiler: Arc<Profiler>,
    sink: Arc<Collect>,
    ended: Arc<Mutex<Vec<String>>>,
}

fn follow() -> Followed {
    let (serial, cupti) = double::take();
    let sink = Arc::new(Collect::default());
    let config = ProfilerConfig {
        activities: [Activity::Kernel].into_iter().collect(),
        ..ProfilerConfig::default()
    };
    let profiler = Arc::new(Profiler::with_warnings(config, sink.clone(), warnings().0));
    let weak: Weak<Profiler> = Arc::downgrade(&profiler);
    let ended = Arc::new(Mutex::new(Vec::new()));
    let log = ended.clone();
    profiler
        .follow_application(
            true,
            Arc::new(move |control: Control| {
                let Control::RangeEnd(name) = control else {
                    return;
                };
                if let Some(profiler) = weak.upgrade().filter(|_| name.starts_with("step")) {
                    profiler.step();
                }
                log.lock().unwrap().push(name);
            }),
        )
        .unwrap();
    Followed {
        _serial: serial,
        cupti,
        profiler,
        sink,
        ended,
    }
}

impl Followed {
    fn ended(&self) -> Vec<String> {
        std::mem::take(&mut *self.ended.lock().unwrap())
    }

    fn nvtx<P>(&self, cbid: Cbid, params: &P) {
        assert_eq!(self.cupti.invoke_nvtx::<P, ()>(cbid, params, None), 1);
    }

    fn nvtx_returning<P, R>(&self, cbid: Cbid, params: &P, returned: &R) {
        assert_eq!(self.cupti.invoke_nvtx(cbid, params, Some(returned)), 1);
    }

    fn push_a(&self, message: &CStr) {
        let params = nvtxRangePushA_params {
            message: message.as_ptr(),
        };
        self.nvtx(Cbid::CUPTI_CBID_NVTX_nvtxRangePushA, &params);
    }

    fn pop(&self) {
        let params: nvtxRangePop_params = zero();
        self.nvtx(Cbid::CUPTI_CBID_NVTX_nvtxRangePop, &params);
    }

    fn domain_push(&self, domain: nvtxDomainHandle_t, attributes: &nvtxEventAttributes_t) {
        let params = nvtxDomainRangePushEx_params {
            domain,
            core: nvtxRangePushEx_params {
                eventAttrib: attributes,
            },
        };
        self.nvtx(Cbid::CUPTI_CBID_NVTX_nvtxDomainRangePushEx, &params);
    }

    fn domain_pop(&self, domain: nvtxDomainHandle_t) {
        let params = nvtxDomainRangePop_params { domain };
        self.nvtx(Cbid::CUPTI_CBID_NVTX_nvtxDomainRangePop, &params);
    }

    /// `nvtxDomainRegisterStringA(domain, text)`, CUPTI returning `handle`.
    fn register_a(&self, domain: nvtxDomainHandle_t, text: &CStr, handle: nvtxStringHandle_t) {
        let params = nvtxDomainRegisterStringA_params {
            domain,
            string: text.as_ptr(),
        };
        self.nvtx_returning(
            Cbid::CUPTI_CBID_NVTX_nvtxDomainRegisterStringA,
            &params,
            &handle,
        );
    }
}

/// A NUL-terminated `wchar_t` string.
fn wide(text: &str) -> Vec<wchar_t> {
    text.chars().map(|c| c as wchar_t).chain([0]).collect()
}

/// Event attributes of the current NVTX version carrying `message`.
fn attributes(kind: nvtxMessageType_t, message: nvtxMessageValue_t) -> nvtxEventAttributes_t {
    let mut attributes: nvtxEventAttributes_t = zero();
    attributes.version = 3;
    attributes.size = size_of::<nvtxEventAttributes_t>() as u16;
    attributes.messageType = kind.0 as i32;
    attributes.message = message;
    attributes
}

fn ascii(text: &CStr) -> nvtxEventAttributes_t {
    attributes(
        nvtxMessageType_t::NVTX_MESSAGE_TYPE_ASCII,
        nvtxMessageValue_t {
            ascii: text.as_ptr(),
        },
    )
}

fn unicode(text: &[wchar_t]) -> nvtxEventAttributes_t {
    attributes(
        nvtxMessageType_t::NVTX_MESSAGE_TYPE_UNICODE,
        nvtxMessageValue_t {
            unicode: text.as_ptr(),
        },
    )
}

fn registered(handle: nvtxStringHandle_t) -> nvtxEventAttributes_t {
    attributes(
        nvtxMessageType_t::NVTX_MESSAGE_TYPE_REGISTERED,
        nvtxMessageValue_t { registered: handle },
    )
}

/// A made-up opaque handle (the tracer only compares them).
fn handle<T>(address: usize) -> *mut T {
    address as *mut T
}

#[test]
fn every_range_flavour_ends_once_with_its_name_and_matching_names_step() {
    let f = follow();
    let domain = handle::<nvtxDomainRegistration>(0xd0);
    let step_w = wide("step-W");
    let step_ex_w = wide("step-Ex-W");
    let other_w = wide("other-W");
    let registered_w = wide("step-registered-W");
    f.profiler.start();

    f.push_a(c"step-A");
    f.pop();
    let params = nvtxRangePushW_params {
        message: step_w.as_ptr(),
    };
    f.nvtx(Cbid::CUPTI_CBID_NVTX_nvtxRangePushW, &params);
    f.pop();
    let ex = ascii(c"step-Ex");
    f.nvtx(
        Cbid::CUPTI_CBID_NVTX_nvtxRangePushEx,
        &nvtxRangePushEx_params { eventAttrib: &ex },
    );
    f.pop();
    let ex_w = unicode(&step_ex_w);
    f.nvtx(
        Cbid::CUPTI_CBID_NVTX_nvtxRangePushEx,
        &nvtxRangePushEx_params { eventAttrib: &ex_w },
    );
    f.pop();
    f.domain_push(domain, &ascii(c"step-domain"));
    f.domain_pop(domain);
    f.register_a(domain, c"step-registered", handle(0x51));
    f.domain_push(domain, &registered(handle(0x51)));
    f.domain_pop(domain);
    let params = nvtxDomainRegisterStringW_params {
        domain,
        // The header's `char*` holds the wide string.
        string: registered_w.as_ptr().cast::<c_char>(),
    };
    f.nvtx_returning(
        Cbid::CUPTI_CBID_NVTX_nvtxDomainRegisterStringW,
        &params,
        &handle::<nvtxStringRegistration>(0x52),
    );
    f.domain_push(domain, &registered(handle(0x52)));
    f.domain_pop(domain);

    // Start/end: the start returns the id the end passes.
    let start_a = nvtxRangeStartA_params {
        message: c"step-start-A".as_ptr(),
    };
    f.nvtx_returning(Cbid::CUPTI_CBID_NVTX_nvtxRangeStartA, &start_a, &1u64);
    let other_a = nvtxRangeStartA_params {
        message: c"other-A".as_ptr(),
    };
    f.nvtx_returning(Cbid::CUPTI_CBID_NVTX_nvtxRangeStartA, &other_a, &2u64);
    let start_w = nvtxRangeStartW_params {
        message: other_w.as_ptr(),
    };
    f.nvtx_returning(Cbid::CUPTI_CBID_NVTX_nvtxRangeStartW, &start_w, &3u64);
    let start_ex = ascii(c"step-start-Ex");
    let params = nvtxRangeStartEx_params {
        eventAttrib: &start_ex,
    };
    f.nvtx_returning(Cbid::CUPTI_CBID_NVTX_nvtxRangeStartEx, &params, &4u64);
    let domain_start = ascii(c"step-domain-start");
    let params = nvtxDomainRangeStartEx_params {
        domain,
        core: nvtxRangeStartEx_params {
            eventAttrib: &domain_start,
        },
    };
    f.nvtx_returning(Cbid::CUPTI_CBID_NVTX_nvtxDomainRangeStartEx, &params, &5u64);
    for id in [2, 3, 1] {
        f.nvtx(
            Cbid::CUPTI_CBID_NVTX_nvtxRangeEnd,
            &nvtxRangeEnd_params { id },
        );
    }
    // Id 5 is the named domain's: the global domain's end of it ends nothing.
    f.nvtx(
        Cbid::CUPTI_CBID_NVTX_nvtxRangeEnd,
        &nvtxRangeEnd_params { id: 5 },
    );
    f.nvtx(
        Cbid::CUPTI_CBID_NVTX_nvtxRangeEnd,
        &nvtxRangeEnd_params { id: 4 },
    );
    let params = nvtxDomainRangeEnd_params {
        domain,
        core: nvtxRangeEnd_params { id: 5 },
    };
    f.nvtx(Cbid::CUPTI_CBID_NVTX_nvtxDomainRangeEnd, &params);
    // Ended ranges end nothing twice.
    f.nvtx(Cbid::CUPTI_CBID_NVTX_nvtxDomainRangeEnd, &params);
    f.nvtx(
        Cbid::CUPTI_CBID_NVTX_nvtxRangeEnd,
        &nvtxRangeEnd_params { id: 1 },
    );
    f.profiler.stop();
    f.profiler.shutdown();

    assert_eq!(
        f.ended(),
        [
            "step-A",
            "step-W",
            "step-Ex",
            "step-Ex-W",
            "step-domain",
            "step-registered",
            "step-registered-W",
            "other-A",
            "other-W",
            "step-start-A",
            "step-start-Ex",
            "step-domain-start",
        ]
    );
    let traces = f.sink.traces();
    assert_eq!(traces.len(), 1);
    let t = &traces[0];
    // Ten `step*` ends were ten steps (the two `other*` ends none), and `stop()`
    // ended the eleventh iteration.
    assert_eq!(
        t.iterations.iter().map(|i| i.number).collect::<Vec<_>>(),
        (1..=11).collect::<Vec<_>>()
    );
}

#[test]
fn pops_pair_with_pushes_per_thread_and_per_domain() {
    let f = follow();
    let domain = handle::<nvtxDomainRegistration>(0xd1);
    f.push_a(c"outer");
    f.domain_push(domain, &ascii(c"d-outer"));
    f.push_a(c"inner");
    f.domain_push(domain, &ascii(c"d-inner"));
    f.domain_pop(domain);
    f.pop();
    assert_eq!(f.ended(), ["d-inner", "inner"]);

    // Another thread's ranges are its own: this thread's pop cannot end them,
    // and its pop ends its own innermost range.
    let (pushed, wait_pushed) = channel();
    let (go, wait_go) = channel();
    std::thread::scope(|s| {
        let f = &f;
        s.spawn(move || {
            f.push_a(c"thread-2");
            pushed.send(()).unwrap();
            wait_go.recv().unwrap();
            f.pop();
        });
        wait_pushed.recv().unwrap();
        f.domain_pop(domain);
        assert_eq!(f.ended(), ["d-outer"]);
        f.domain_pop(domain);
        f.pop();
        f.pop();
        assert_eq!(f.ended(), ["outer"]);
        go.send(()).unwrap();
    });
    assert_eq!(f.ended(), ["thread-2"]);

    // A null domain is the global one.
    f.domain_push(std::ptr::null_mut(), &ascii(c"null-domain"));
    f.pop();
    f.push_a(c"global");
    f.domain_pop(std::ptr::null_mut());
    assert_eq!(f.ended(), ["null-domain", "global"]);

    // A start/end range may end on another thread.
    let params = nvtxRangeStartA_params {
        message: c"crosses".as_ptr(),
    };
    f.nvtx_returning(Cbid::CUPTI_CBID_NVTX_nvtxRangeStartA, &params, &9u64);
    std::thread::scope(|s| {
        s.spawn(|| {
            f.nvtx(
                Cbid::CUPTI_CBID_NVTX_nvtxRangeEnd,
                &nvtxRangeEnd_params { id: 9 },
            )
        })
        .join()
        .unwrap();
    });
    assert_eq!(f.ended(), ["crosses"]);
    f.profiler.shutdown();
}

#[test]
fn ranges_without_a_readable_name_end_silently_and_keep_the_pairing() {
    let f = follow();
    let domain = handle::<nvtxDomainRegistration>(0xd2);
    f.push_a(c"step-outer");
    // A string registered before the tracer subscribed: its text is unknown.
    f.domain_push(std::ptr::null_mut(), &registered(handle(0x99)));
    // Attributes too short to hold a message, and no message at all.
    let mut short = ascii(c"step-short");
    short.size = 16;
    f.domain_push(std::ptr::null_mut(), &short);
    f.domain_push(
        std::ptr::null_mut(),
        &attributes(
            nvtxMessageType_t::NVTX_MESSAGE_UNKNOWN,
            nvtxMessageValue_t {
                ascii: std::ptr::null(),
            },
        ),
    );
    for _ in 0..3 {
        f.pop();
    }
    assert_eq!(f.ended(), Vec::<String>::new());
    f.pop();
    assert_eq!(f.ended(), ["step-outer"]);

    // A registration seen later names the ranges from then on, in any domain.
    f.register_a(domain, c"step-late", handle(0x99));
    f.domain_push(domain, &registered(handle(0x99)));
    f.domain_pop(domain);
    assert_eq!(f.ended(), ["step-late"]);

    // A start whose id CUPTI did not return cannot be ended.
    let params = nvtxRangeStartA_params {
        message: c"no-id".as_ptr(),
    };
    f.nvtx(Cbid::CUPTI_CBID_NVTX_nvtxRangeStartA, &params);
    f.nvtx(
        Cbid::CUPTI_CBID_NVTX_nvtxRangeEnd,
        &nvtxRangeEnd_params { id: 0 },
    );
    assert_eq!(f.ended(), Vec::<String>::new());
    f.profiler.shutdown();
}

#[test]
fn every_range_callback_is_enabled() {
    let f = follow();
    let nvtx = CUpti_CallbackDomain::CUPTI_CB_DOMAIN_NVTX;
    for cbid in [
        Cbid::CUPTI_CBID_NVTX_nvtxRangePushA,
        Cbid::CUPTI_CBID_NVTX_nvtxRangePushW,
        Cbid::CUPTI_CBID_NVTX_nvtxRangePushEx,
        Cbid::CUPTI_CBID_NVTX_nvtxRangePop,
        Cbid::CUPTI_CBID_NVTX_nvtxRangeStartA,
        Cbid::CUPTI_CBID_NVTX_nvtxRangeStartW,
        Cbid::CUPTI_CBID_NVTX_nvtxRangeStartEx,
        Cbid::CUPTI_CBID_NVTX_nvtxRangeEnd,
        Cbid::CUPTI_CBID_NVTX_nvtxDomainRangePushEx,
        Cbid::CUPTI_CBID_NVTX_nvtxDomainRangePop,
        Cbid::CUPTI_CBID_NVTX_nvtxDomainRangeStartEx,
        Cbid::CUPTI_CBID_NVTX_nvtxDomainRangeEnd,
        Cbid::CUPTI_CBID_NVTX_nvtxDomainRegisterStringA,
        Cbid::CUPTI_CBID_NVTX_nvtxDomainRegisterStringW,
    ] {
        assert!(f.cupti.callback_enabled(nvtx, cbid.0), "{cbid:?}");
    }
    f.profiler.shutdown();
}
