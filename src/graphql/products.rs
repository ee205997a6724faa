//! Products and per-name product counts over GraphQL.

use async_graphql::{Context, Enum, InputObject, Object, ScalarType, Value};
use entity::{product, product_count};
use sea_orm::sea_query::Order;

use super::connection::{Page, PageArgs, list};
use super::db::db;
use super::error::{ApiError, ApiResult};
use super::filters::{
    DateTimeFilterInput, IntFilterInput, SortDirection, StringFilterInput, optional,
};
use super::row::{Columns, Row};
use super::scalars::DateTime;
use crate::store::products::{self, CountFilter, CountSort, ProductFilter, ProductSort};

/// One product.
pub struct Product(pub product::Model);

impl Columns for Product {
    fn column(&self, name: &str) -> Option<Value> {
        let p = &self.0;
        Some(match name {
            "sku" => Value::from(p.sku.as_str()),
            "name" => Value::from(p.name.as_deref()),
            "description" => Value::from(p.description.as_deref()),
            "updatedAt" => DateTime::from(p.updated_at).to_value(),
            "provider" => Value::from(p.provider.as_str()),
            _ => return None,
        })
    }
}

#[Object]
impl Product {
    /// The key: a later row with the same SKU replaces name and description.
    async fn sku(&self) -> &str {
        &self.0.sku
    }
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// When name or description last changed.
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
    /// The provider (or `import:product`) that wrote the current values.
    async fn provider(&self) -> &str {
        &self.0.provider
    }
}

/// How many products carry one name.
pub struct ProductCount(pub product_count::Model);

impl Columns for ProductCount {
    fn column(&self, name: &str) -> Option<Value> {
        Some(match name {
            "name" => Value::from(self.0.name.as_str()),
            "count" => Value::from(self.0.count),
            _ => return None,
        })
    }
}

#[Object]
impl ProductCount {
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn count(&self) -> i64 {
        self.0.count
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductOrderField {
    Sku,
    Name,
    UpdatedAt,
}

#[derive(InputObject, Debug, Clone, Copy)]
pub struct ProductOrder {
    pub field: ProductOrderField,
    #[graphql(default)]
    pub direction: SortDirection,
}

/// Filters for products; all given conditions must hold.
#[derive(InputObject, Debug, Clone, Default)]
pub struct ProductWhere {
    pub sku: Option<StringFilterInput>,
    pub name: Option<StringFilterInput>,
    pub updated_at: Option<DateTimeFilterInput>,
}

/// Filters for product counts.
#[derive(InputObject, Debug, Clone, Default)]
pub struct ProductCountWhere {
    pub name: Option<StringFilterInput>,
    pub count: Option<IntFilterInput>,
}

/// How product counts are ordered.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProductCountOrder {
    /// Most products first; by name within one count.
    #[default]
    CountDesc,
    Name,
}

#[derive(Default)]
pub struct ProductQuery;

#[Object]
impl ProductQuery {
    /// One product by SKU; null when unknown.
    async fn product(&self, ctx: &Context<'_>, sku: String) -> ApiResult<Option<Product>> {
        let db = db(ctx);
        Ok(products::get(db, &sku).await?.map(Product))
    }

    /// Products matching `where`, by SKU unless `orderBy` says otherwise.
    #[graphql(complexity = "PageArgs::size(first, last) * child_complexity")]
    #[allow(clippy::too_many_arguments)]
    async fn products(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "where")] filter: Option<ProductWhere>,
        order_by: Option<Vec<ProductOrder>>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> ApiResult<Page<Row<Product>>> {
        let db = db(ctx);
        let w = filter.unwrap_or_default();
        let filter = ProductFilter {
            sku: optional(w.sku, "where.sku", StringFilterInput::into_store)?,
            name: optional(w.name, "where.name", StringFilterInput::into_store)?,
            updated_at: optional(
                w.updated_at,
                "where.updatedAt",
                DateTimeFilterInput::into_store,
            )?,
        };
        let order_by = order_by.unwrap_or_default();
        if order_by.len() > 2 {
            return Err(ApiError::bad_input("`orderBy` takes at most 2 entries"));
        }
        let sort: Vec<(ProductSort, Order)> = order_by
            .into_iter()
            .map(|o| {
                let field = match o.field {
                    ProductOrderField::Sku => ProductSort::Sku,
                    ProductOrderField::Name => ProductSort::Name,
                    ProductOrderField::UpdatedAt => ProductSort::UpdatedAt,
                };
                (field, o.direction.into())
            })
            .collect();
        let order = products::order(&sort);
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        list(
            args,
            &order,
            async |request| products::list(db, &filter, &sort, request).await,
            |p| products::cursor_values(&sort, p),
            |p| Row(Product(p)),
        )
        .await
    }

    /// Names with how many products carry each (products without a name are not counted),
    /// exact after every committed batch. Most common first unless `orderBy: NAME`.
    #[graphql(complexity = "PageArgs::size(first, last) * child_complexity")]
    #[allow(clippy::too_many_arguments)]
    async fn product_counts(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "where")] filter: Option<ProductCountWhere>,
        order_by: Option<ProductCountOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> ApiResult<Page<Row<ProductCount>>> {
        let db = db(ctx);
        let w = filter.unwrap_or_default();
        let filter = CountFilter {
            name: optional(w.name, "where.name", StringFilterInput::into_store)?,
            count: optional(w.count, "where.count", IntFilterInput::into_store)?,
        };
        let sort = match order_by.unwrap_or_default() {
            ProductCountOrder::CountDesc => CountSort::CountDesc,
            ProductCountOrder::Name => CountSort::Name,
        };
        let order = products::count_order(sort);
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        list(
            args,
            &order,
            async |request| products::list_counts(db, &filter, sort, request).await,
            |c| products::count_cursor_values(sort, c),
            |c| Row(ProductCount(c)),
        )
        .await
    }
}
