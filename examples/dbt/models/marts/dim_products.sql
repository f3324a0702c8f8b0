-- Products as a type 1 dimension: the raw table elt keeps merged by id, without the rows
-- deleted in the source.
select
    md5(cast(id as varchar)) as product_sk,
    id as product_id,
    sku,
    name,
    category,
    price,
    weight_kg,
    updated_at
from {{ source('demo', 'products') }}
where _elt_deleted_at is null
