-- One row per order with surrogate keys into the dimensions: the customer's version valid
-- when the order was placed, the product, and the day it was placed (in UTC).
select
    o.order_id,
    c.customer_sk,
    p.product_sk,
    d.date_key as placed_date_key,
    o.quantity,
    o.unit_price,
    o.order_total,
    o.status,
    o.placed_at
from {{ ref('stg_orders') }} as o
left join {{ ref('dim_customers') }} as c
    on c.customer_id = o.customer_id
    and o.placed_at >= c.valid_from
    and o.placed_at < c.valid_to
left join {{ ref('dim_products') }} as p
    on p.product_id = o.product_id
left join {{ ref('dim_dates') }} as d
    on d.date = cast(timezone('UTC', o.placed_at) as date)
