using Billing.Accounts;
using Billing.Storage;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Orleans.Configuration;

namespace Billing.Hosting;

public static class BillingSiloBuilderExtensions
{
    /// <summary>
    /// The Orleans grain storage provider for billing state which is not money. No grain uses it at present: the
    /// first-project credit claim is written with the project's account, in one statement (issue 9).
    /// </summary>
    public const string GrainStorageName = "billing";

    /// <summary>
    /// Everything a silo needs to host the billing grains: the PostgreSQL data source they share and the
    /// Orleans ADO.NET grain storage on the same database. Clustering is the host's choice.
    /// </summary>
    public static ISiloBuilder AddBillingGrains(this ISiloBuilder silo, string connectionString)
    {
        silo.Services.AddOptions<BillingLimits>().Bind(silo.Configuration.GetSection(BillingLimits.Section));
        silo.Services.AddSingleton<BillingCallers>();
        silo.Services.AddSingleton(sp => NpgsqlDataSource.Create(WithBillingDefaults(connectionString, sp.GetService<ILocalSiloDetails>())));
        silo.Services.AddHostedService<DeadSiloFencing>();
        silo.Services.AddSingleton<LedgerStore>();
        silo.Services.AddSingleton<LedgerWriter>();
        silo.Services.AddSingleton<UsageRecordStore>();
        silo.Services.AddSingleton<PricingStore>();
        silo.Services.AddSingleton<Billing.Pricing.PriceBook>().AddGrainService<Billing.Pricing.PriceBookService>()
            .AddSingleton<Billing.Pricing.IPriceBookServiceClient, Billing.Pricing.PriceBookServiceClient>();
        silo.Services.AddSingleton<BillingErrorStore>();
        silo.AddBillingHolds();
        silo.AddBillingEvents(); // outbox, balance alerts, webhook dispatcher
        silo.AddCreditGrants(); // issue 12: grant options, store and clock
        silo.Services.AddSingleton(TimeProvider.System);
        silo.AddIncomingGrainCallFilter<BillingFaultFilter>(); // database faults cross grain boundaries as serialisable types
        // A grain call carries its caller's trace (W3C trace context in the message): one trace from the HTTP request to
        // the ledger's statement. Costs nothing while no tracer listens.
        silo.AddActivityPropagation();
        silo.AddAdoNetGrainStorage(GrainStorageName, (AdoNetGrainStorageOptions options) =>
        {
            options.Invariant = "Npgsql";
            options.ConnectionString = connectionString;
        });
        return silo;
    }

    /// <summary>
    /// The ledger's few statements run constantly: let Npgsql prepare them, and PostgreSQL keep one generic plan
    /// for each (re-planning the commit statement per call cost more than running it), unless told otherwise. And no
    /// session reset when a pooled connection is taken again (<c>No Reset On Close</c>): that reset is seven statements
    /// (<c>RESET ALL</c>, <c>DISCARD TEMP</c>, …), ≈ 260 µs of PostgreSQL per ledger transaction, as much as a HOT
    /// usage's rows. The grains' connections leave nothing for it to clear: every command is one statement or one
    /// batch in an implicit transaction, with no settings, cursors, temporary tables, advisory locks or listeners
    /// (the schema migrator's lock and transactions use a connection of their own).
    /// </summary>
    private static string WithBillingDefaults(string connectionString, ILocalSiloDetails? silo)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        // Names this silo's sessions, so that the others can terminate them once it is declared dead (DeadSiloFencing).
        if (silo is not null) builder.ApplicationName = DeadSiloFencing.ApplicationName(silo.SiloAddress);
        if (builder.MaxAutoPrepare == 0) builder.MaxAutoPrepare = 32;
        if (string.IsNullOrEmpty(builder.Options)) builder.Options = "-c plan_cache_mode=force_generic_plan";
        builder.NoResetOnClose = true;
        return builder.ConnectionString;
    }
}
