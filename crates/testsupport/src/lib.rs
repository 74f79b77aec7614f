//! Throwaway databases for tests.
//!
//! * [`TestDb::sqlite`]: a file in a fresh temporary directory.
//! * [`TestDb::postgres`]: a uniquely named database on the PostgreSQL server
//!   at `BDC_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`),
//!   created on construction and dropped (`WITH (FORCE)`) when the guard drops.
//!
//! Tests that need PostgreSQL fail loudly when it is not reachable: a
//! skipped database test would hide exactly the bugs it exists to catch.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

/// Default admin URL of the local test server.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Admin URL for creating test databases.
pub fn postgres_admin_url() -> String {
    std::env::var("BDC_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// Which backend a test database lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// A throwaway database; dropped with the guard.
pub struct TestDb {
    url: String,
    kind: Kind,
    pg_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn new(kind: Kind) -> TestDb {
        match kind {
            Kind::Sqlite => Self::sqlite(),
            Kind::Postgres => Self::postgres().await,
        }
    }

    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("creating a temp dir: {e}"));
        let url = format!("sqlite://{}", dir.path().join("bdc-test.sqlite3").display());
        TestDb {
            url,
            kind: Kind::Sqlite,
            pg_name: None,
            _dir: Some(dir),
        }
    }

    pub async fn postgres() -> TestDb {
        let admin = postgres_admin_url();
        let name = format!("bdc_test_{}", uuid::Uuid::new_v4().simple());
        let opts = PgConnectOptions::from_str(&admin)
            .unwrap_or_else(|e| panic!("BDC_TEST_POSTGRES_URL {admin:?} is invalid: {e}"));
        let mut conn = opts.connect().await.unwrap_or_else(|e| {
            panic!("PostgreSQL is required for this test but {admin} is unreachable: {e}")
        });
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("creating test database {name}: {e}"));
        let _ = conn.close().await;
        let url = opts.database(&name).to_url_lossy().to_string();
        TestDb {
            url,
            kind: Kind::Postgres,
            pg_name: Some(name),
            _dir: None,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        let admin = postgres_admin_url();
        // Drop runs outside any async context guarantee: use a private
        // runtime on a scoped thread.
        std::thread::scope(|s| {
            s.spawn(|| {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async {
                    let Ok(opts) = PgConnectOptions::from_str(&admin) else {
                        return;
                    };
                    if let Ok(mut conn) = opts.connect().await {
                        let _ = sqlx::raw_sql(AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        )))
                        .execute(&mut conn)
                        .await;
                        let _ = conn.close().await;
                    }
                });
            });
        });
    }
}

/// `both_backends!(scenario)` turns `async fn scenario(kind: Kind)` into a
/// module with two multi-threaded tokio tests, `scenario::sqlite` and
/// `scenario::postgres`. Test crates import it as
/// `use bdc_testsupport::both_backends as both;`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                super::$name($crate::Kind::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                super::$name($crate::Kind::Postgres).await;
            }
        }
    };
}

/// Admin URL of the MySQL/MariaDB test server (`BDC_TEST_MYSQL_URL`).
pub fn mysql_admin_url() -> String {
    std::env::var("BDC_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// A throwaway MySQL/MariaDB database (`bdc_test_<uuid>`), dropped with the
/// guard. [`MySqlTestDb::new`] returns None (after printing a note) when
/// the server is unreachable, unless `BDC_REQUIRE_MYSQL=1`, which makes
/// that a panic.
pub struct MySqlTestDb {
    url: String,
    name: String,
    admin: String,
}

impl MySqlTestDb {
    pub async fn new() -> Option<MySqlTestDb> {
        Self::on(mysql_admin_url()).await
    }

    /// A throwaway database on the server of `admin` (a `mysql://` URL).
    pub async fn on(admin: String) -> Option<MySqlTestDb> {
        use sqlx::mysql::MySqlConnectOptions;
        let opts = MySqlConnectOptions::from_str(&admin)
            .unwrap_or_else(|e| panic!("BDC_TEST_MYSQL_URL {admin:?} is invalid: {e}"));
        let mut conn = match opts.connect().await {
            Ok(c) => c,
            Err(e) => {
                if std::env::var("BDC_REQUIRE_MYSQL").as_deref() == Ok("1") {
                    panic!(
                        "MySQL is required (BDC_REQUIRE_MYSQL=1) but {admin} is unreachable: {e}"
                    );
                }
                eprintln!(
                    "note: skipping the MySQL case: {admin} is unreachable ({e}); set BDC_TEST_MYSQL_URL or BDC_REQUIRE_MYSQL=1"
                );
                return None;
            }
        };
        let name = format!("bdc_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE DATABASE `{name}` CHARACTER SET utf8mb4"
        )))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("creating test database {name}: {e}"));
        let _ = conn.close().await;
        let url = format!("{}/{name}", admin.trim_end_matches('/'));
        Some(MySqlTestDb { url, name, admin })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for MySqlTestDb {
    fn drop(&mut self) {
        let name = std::mem::take(&mut self.name);
        let admin = std::mem::take(&mut self.admin);
        std::thread::scope(|s| {
            s.spawn(|| {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async {
                    use sqlx::mysql::MySqlConnectOptions;
                    let Ok(opts) = MySqlConnectOptions::from_str(&admin) else {
                        return;
                    };
                    if let Ok(mut conn) = opts.connect().await {
                        let _ = sqlx::raw_sql(AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS `{name}`"
                        )))
                        .execute(&mut conn)
                        .await;
                        let _ = conn.close().await;
                    }
                });
            });
        });
    }
}
