//! Reading confirmed signups, the same SQL on both backends (`$n`
//! placeholders work in SQLite too): [`confirmed!`] writes the two
//! [`super::signups::Signups`] methods once for each backend's `impl`.

use std::collections::BTreeMap;

use chrono::DateTime;
use sqlx::Row;

use super::signups::Confirmed;

/// The columns [`confirmed_of`] reads, in its order.
pub(super) const COLUMNS: &str = "SELECT s.email, s.address, s.name, s.timezone, s.fields,
    s.requested_at, s.confirmed_at, s.confirmed_ip, s.confirmed_form FROM signups s
    WHERE s.sequence = $1 AND s.confirmed_at IS NOT NULL";

macro_rules! confirmed {
    () => {
        async fn confirmed(&self, sequence: &str) -> Result<Vec<Confirmed>> {
            let rows = sqlx::query(&format!("{} ORDER BY s.email", super::confirmed::COLUMNS))
                .bind(sequence)
                .fetch_all(self.pool())
                .await?;
            Ok(rows.iter().map(super::confirmed::confirmed_of).collect())
        }

        async fn confirmed_outside(&self, drip: &super::roster::DripKey) -> Result<Vec<Confirmed>> {
            let query = format!(
                "{} AND NOT EXISTS (SELECT 1 FROM members m
                     WHERE m.sequence = s.sequence AND m.list = $2 AND m.email = s.email)
                 ORDER BY s.email",
                super::confirmed::COLUMNS
            );
            let rows = sqlx::query(&query)
                .bind(&drip.sequence)
                .bind(&drip.list)
                .fetch_all(self.pool())
                .await?;
            Ok(rows.iter().map(super::confirmed::confirmed_of).collect())
        }
    };
}

/// A row of [`COLUMNS`], from either backend.
pub(super) fn confirmed_of<R>(row: &R) -> Confirmed
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let time = |seconds: i64| DateTime::from_timestamp(seconds, 0).unwrap_or_default();
    Confirmed {
        email: row.get(0),
        address: row.get(1),
        name: row.get(2),
        timezone: row.get(3),
        fields: serde_json::from_str::<BTreeMap<String, String>>(&row.get::<String, _>(4))
            .unwrap_or_default(),
        requested_at: time(row.get(5)),
        confirmed_at: time(row.get(6)),
        confirmed_ip: row.get::<Option<String>, _>(7).unwrap_or_default(),
        confirmed_form: row.get::<Option<String>, _>(8).unwrap_or_default(),
    }
}
