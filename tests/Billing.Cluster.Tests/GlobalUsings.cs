global using Billing.Cluster.Tests.Infrastructure;
global using Billing.Testing;
global using Xunit;
global using Xunit.Abstractions;
