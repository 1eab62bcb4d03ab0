// An example service that emits and handles events, as a service module (default export:
// { service, version, methods, events }). `orders.place` stores an order and emits
// `order.created`; the service's own durable subscription "ships" each order once, and a
// broadcast subscription keeps every instance's cache of recent orders. Run it with an agent
// that has an SDK mesh (`mesh` option), so `ctx.mesh.emit` can publish.
import { MeshError } from "@natsmesh/agent";

/** Orders placed, by id (this instance's memory: it stands for a database). */
const orders = new Map();
/** Ids of orders this instance shipped; each order is shipped by one instance of the service. */
const shipped = new Set();
/** What every instance has heard about recently (broadcast). */
const recent = [];

export default {
  service: "orders",
  version: "1.0.0",
  methods: {
    /** `{ item, quantity? }` → the order; emits `order.created` once it is stored. */
    place: async ({ item, quantity = 1 } = {}, ctx) => {
      if (typeof item !== "string" || item.length === 0) {
        throw new MeshError("BAD_REQUEST", "item must be a non-empty string");
      }
      const order = { id: `o-${Date.now().toString(36)}-${orders.size}`, item, quantity };
      orders.set(order.id, order);
      // The order id as the event id: placing the same order twice emits it once.
      await ctx.mesh.emit("order.created", order, { idempotencyKey: order.id });
      return order;
    },
    /** What this instance knows: shipped order ids and recent broadcasts. */
    status: () => ({ shipped: [...shipped], recent: [...recent] }),
  },
  events: {
    // Durable (the default): stored, handled once per service, retried, dead-lettered.
    "order.created": async (order, ctx) => {
      // Idempotent on the event id: a redelivery after a crash ships nothing twice.
      if (shipped.has(ctx.event.id)) return;
      if (order.quantity > 100) {
        throw new MeshError("OUT_OF_STOCK", `cannot ship ${order.quantity} × ${order.item}`);
      }
      shipped.add(ctx.event.id);
      ctx.log.info({ order: order.id, deliveries: ctx.event.deliveries }, "order shipped");
    },
    // Live, every instance: cache invalidation and the like.
    "order.*": {
      mode: "broadcast",
      handler: (order, ctx) => {
        recent.push({ event: ctx.event.name, id: order.id });
        if (recent.length > 100) recent.shift();
      },
    },
  },
};
