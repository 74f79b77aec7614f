//! The three backends of the greenness store in tests: SQLite, PostgreSQL
//! (`BDC_TEST_POSTGRES_URL`) and MySQL/MariaDB (`BDC_TEST_MYSQL_URL`; the
//! main database stays SQLite, the greenness tables go to a throwaway
//! MySQL database, as with `BDC_GREENNESS_DATABASE_URL=mysql://…`).
#![allow(dead_code)]

use bdc_greenness::store::SqlStore;
use bdc_greenness::store::mysql::MySqlStore;
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, MySqlTestDb, TestDb};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
    MySql,
}

/// The databases of one test (dropped with it).
pub struct Dbs {
    pub main: TestDb,
    pub mysql: Option<(MySqlTestDb, MySqlStore)>,
    pub storage: Storage,
}

impl Dbs {
    /// None: the MySQL case is skipped (server unreachable and
    /// `BDC_REQUIRE_MYSQL` unset; a note was printed).
    pub async fn new(db: Db) -> Option<Dbs> {
        let kind = if db == Db::Postgres {
            Kind::Postgres
        } else {
            Kind::Sqlite
        };
        let mysql = if db == Db::MySql {
            let my = MySqlTestDb::new().await?;
            let store = MySqlStore::connect(my.url()).await.unwrap();
            store.migrate().await.unwrap();
            Some((my, store))
        } else {
            None
        };
        let main = TestDb::new(kind).await;
        let storage = Storage::connect(main.url(), &ConnectOptions::default())
            .await
            .unwrap();
        storage
            .migrate_parts(&[&bdc_greenness::store::SCHEMA])
            .await
            .unwrap();
        Some(Dbs {
            main,
            mysql,
            storage,
        })
    }

    pub fn store(&self) -> SqlStore {
        match &self.mysql {
            Some((_, my)) => SqlStore::with_mysql(self.storage.clone(), my.clone()),
            None => SqlStore::new(self.storage.clone()),
        }
    }
}
