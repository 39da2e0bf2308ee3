//! Starting the service: the HTTP server and the background tasks (the conversation worker, the
//! outbox dispatcher, the scheduler, the flow reloader), all on one shared [`App`].

use std::sync::Arc;

use crate::pipeline::App;

/// Binds the HTTP server and starts the background tasks. Returns the bound addresses and the
/// server future, which runs until the server stops.
///
/// Errors: the address cannot be bound.
pub fn start(app: Arc<App>) -> std::io::Result<(Vec<std::net::SocketAddr>, actix_web::dev::Server)> {
    let (addrs, server) = crate::server::bind(app.clone())?;
    tokio::spawn(crate::pipeline::worker::run(app.clone()));
    tokio::spawn(crate::pipeline::outbox::run(app.clone()));
    tokio::spawn(crate::pipeline::outbox::handoff::run(app.clone()));
    tokio::spawn(crate::pipeline::scheduler::run(app.clone()));
    tokio::spawn(crate::pipeline::tickets::run(app.clone()));
    tokio::spawn(crate::pipeline::reload::run(app));
    Ok((addrs, server))
}

/// Starts everything and runs until the server stops. The bound address is printed on stdout
/// (`listening on http://…`) so scripts and tests find the port when `PORT=0`.
///
/// Errors: the address cannot be bound, or the server failed.
pub async fn serve(app: Arc<App>) -> std::io::Result<()> {
    let (addrs, server) = start(app)?;
    for a in &addrs {
        println!("listening on http://{a}");
    }
    server.await
}
