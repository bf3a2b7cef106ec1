//! `local-services`: the local stand-ins of this crate, each on its own loopback port.
//! Started and stopped by `infra/local/stack.sh` together with ministack.

use std::net::{Ipv4Addr, SocketAddr};

use local_services::{self as services, Ports};

#[tokio::main]
async fn main() {
    shared::logging::init();
    let ports = Ports::from_env();
    let at = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mediaconvert = services::mediaconvert::LocalMediaConvert::new(ports.mediaconvert);
    let origin = services::origin::Origin::start();
    let outcome = tokio::try_join!(
        services::serve("camera_api", at(ports.camera_api), services::camera_api::handle),
        services::serve("mediaconvert", at(ports.mediaconvert), move |r| mediaconvert.handle(r)),
        services::serve("origin", at(ports.origin), move |r| origin.handle(r)),
        services::serve("gif_sources", at(ports.gif_sources), services::gif_sources::handle),
    );
    if let Err(err) = outcome {
        eprintln!("local-services: {err}");
        std::process::exit(1);
    }
}
