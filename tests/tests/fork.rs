//! A forked child never touches its parent's queues: it opens its own and gets correct
//! results. (Its own test binary: forking a process full of test threads is not sound.)

mod common;

use std::sync::Arc;

use common::{key, model_with, policy};
use hisi_hpre::Hpre;
use hisi_model::ApiVersion;
use wd_core::pool::QueuePool;
use wd_tests::child::run_in_child;

#[test]
fn forked_child_gets_its_own_queues_and_correct_results() {
    let m = model_with(ApiVersion::V2, |c| c.queues = 4);
    let device = m.device.clone();
    let pool: Arc<QueuePool<Hpre>> = Arc::new(QueuePool::new(
        "hpre",
        4,
        Box::new(move || hisi_hpre::open_queue(&device, policy(5_000))),
    ));
    let k = key(2048);
    let msg = k.message();
    let c = k.sw_public(&msg);
    // The parent holds a queue in this thread's slot.
    let got = pool.with(|q| hisi_hpre::rsa(q, &k.crt(), &c)).unwrap();
    assert_eq!(got, msg);
    assert_eq!(m.device.available_instances().unwrap(), 3);
    let parent_qid = pool.with(|q| Ok(q.queue().info().qid)).unwrap();

    let child = run_in_child(|| {
        let mut ok = true;
        for _ in 0..5 {
            let m2 = k.message();
            let c2 = k.sw_public(&m2);
            match pool.with(|q| hisi_hpre::rsa(q, &k.crt(), &c2)) {
                Ok(r) if r == m2 => {}
                _ => ok = false,
            }
        }
        // The child opened one queue of its own; the parent's is still taken.
        ok &= pool.open_queues() == 1;
        ok &= m.device.available_instances().unwrap() == 2;
        ok
    });
    assert_eq!(child, Ok(()), "child saw wrong results or state");

    // The child's exit freed its queue; the parent's queue still works, unchanged.
    assert_eq!(m.device.available_instances().unwrap(), 3);
    let again = pool
        .with(|q| {
            assert_eq!(q.queue().info().qid, parent_qid);
            hisi_hpre::rsa(q, &k.crt(), &c)
        })
        .unwrap();
    assert_eq!(again, msg);
}
