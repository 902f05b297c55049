using Billing.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Billing.Accounts;

public static class CreditGrantsSiloBuilderExtensions
{
    /// <summary>Grant options (<c>Billing:Credits</c>), the grant store and the silo's grant clock.</summary>
    public static ISiloBuilder AddCreditGrants(this ISiloBuilder silo)
    {
        silo.Services.AddOptions<CreditGrantOptions>().Bind(silo.Configuration.GetSection(CreditGrantOptions.Section));
        silo.Services.AddSingleton(sp => sp.GetRequiredService<LedgerStore>().Grants);
        silo.Services.AddHostedService<GrantClock>();
        return silo;
    }
}
