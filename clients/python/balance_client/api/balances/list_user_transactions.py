import datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.list_user_transactions_order import ListUserTransactionsOrder
from ...models.list_user_transactions_sort import ListUserTransactionsSort
from ...models.problem import Problem
from ...models.statement_response import StatementResponse
from ...types import UNSET, Response, Unset


def _get_kwargs(
    user_id: int,
    *,
    sort: ListUserTransactionsSort | Unset = UNSET,
    order: ListUserTransactionsOrder | Unset = UNSET,
    limit: int | Unset = 50,
    cursor: str | Unset = UNSET,
    page: int | Unset = UNSET,
    from_: datetime.datetime | Unset = UNSET,
    to: datetime.datetime | Unset = UNSET,
    kind: list[str] | Unset = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    json_sort: str | Unset = UNSET
    if not isinstance(sort, Unset):
        json_sort = sort.value

    params["sort"] = json_sort

    json_order: str | Unset = UNSET
    if not isinstance(order, Unset):
        json_order = order.value

    params["order"] = json_order

    params["limit"] = limit

    params["cursor"] = cursor

    params["page"] = page

    json_from_: str | Unset = UNSET
    if not isinstance(from_, Unset):
        json_from_ = from_.isoformat()
    params["from"] = json_from_

    json_to: str | Unset = UNSET
    if not isinstance(to, Unset):
        json_to = to.isoformat()
    params["to"] = json_to

    json_kind: list[str] | Unset = UNSET
    if not isinstance(kind, Unset):
        json_kind = kind

    params["kind"] = json_kind

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/users/{user_id}/transactions".format(
            user_id=quote(str(user_id), safe=""),
        ),
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Problem | StatementResponse | None:
    if response.status_code == 200:
        response_200 = StatementResponse.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = Problem.from_dict(response.json())

        return response_403

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())

        return response_404

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())

        return response_422

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[Problem | StatementResponse]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    user_id: int,
    *,
    client: AuthenticatedClient,
    sort: ListUserTransactionsSort | Unset = UNSET,
    order: ListUserTransactionsOrder | Unset = UNSET,
    limit: int | Unset = 50,
    cursor: str | Unset = UNSET,
    page: int | Unset = UNSET,
    from_: datetime.datetime | Unset = UNSET,
    to: datetime.datetime | Unset = UNSET,
    kind: list[str] | Unset = UNSET,
) -> Response[Problem | StatementResponse]:
    """List a user's transactions (statement)

    Args:
        user_id (int):
        sort (ListUserTransactionsSort | Unset): date (default) or amount (size)
        order (ListUserTransactionsOrder | Unset): desc (default)
        limit (int | Unset):  Default: 50.
        cursor (str | Unset): next_cursor of the previous page
        page (int | Unset): 1-based page (instead of a cursor)
        from_ (datetime.datetime | Unset): RFC 3339, inclusive
        to (datetime.datetime | Unset): RFC 3339, exclusive
        kind (list[str] | Unset): repeat or comma-separate: deposit, withdrawal, transfer_in,
            transfer_out, reserve, cancel, recognize, release, expire

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | StatementResponse]
    """

    kwargs = _get_kwargs(
        user_id=user_id,
        sort=sort,
        order=order,
        limit=limit,
        cursor=cursor,
        page=page,
        from_=from_,
        to=to,
        kind=kind,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    user_id: int,
    *,
    client: AuthenticatedClient,
    sort: ListUserTransactionsSort | Unset = UNSET,
    order: ListUserTransactionsOrder | Unset = UNSET,
    limit: int | Unset = 50,
    cursor: str | Unset = UNSET,
    page: int | Unset = UNSET,
    from_: datetime.datetime | Unset = UNSET,
    to: datetime.datetime | Unset = UNSET,
    kind: list[str] | Unset = UNSET,
) -> Problem | StatementResponse | None:
    """List a user's transactions (statement)

    Args:
        user_id (int):
        sort (ListUserTransactionsSort | Unset): date (default) or amount (size)
        order (ListUserTransactionsOrder | Unset): desc (default)
        limit (int | Unset):  Default: 50.
        cursor (str | Unset): next_cursor of the previous page
        page (int | Unset): 1-based page (instead of a cursor)
        from_ (datetime.datetime | Unset): RFC 3339, inclusive
        to (datetime.datetime | Unset): RFC 3339, exclusive
        kind (list[str] | Unset): repeat or comma-separate: deposit, withdrawal, transfer_in,
            transfer_out, reserve, cancel, recognize, release, expire

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | StatementResponse
    """

    return sync_detailed(
        user_id=user_id,
        client=client,
        sort=sort,
        order=order,
        limit=limit,
        cursor=cursor,
        page=page,
        from_=from_,
        to=to,
        kind=kind,
    ).parsed


async def asyncio_detailed(
    user_id: int,
    *,
    client: AuthenticatedClient,
    sort: ListUserTransactionsSort | Unset = UNSET,
    order: ListUserTransactionsOrder | Unset = UNSET,
    limit: int | Unset = 50,
    cursor: str | Unset = UNSET,
    page: int | Unset = UNSET,
    from_: datetime.datetime | Unset = UNSET,
    to: datetime.datetime | Unset = UNSET,
    kind: list[str] | Unset = UNSET,
) -> Response[Problem | StatementResponse]:
    """List a user's transactions (statement)

    Args:
        user_id (int):
        sort (ListUserTransactionsSort | Unset): date (default) or amount (size)
        order (ListUserTransactionsOrder | Unset): desc (default)
        limit (int | Unset):  Default: 50.
        cursor (str | Unset): next_cursor of the previous page
        page (int | Unset): 1-based page (instead of a cursor)
        from_ (datetime.datetime | Unset): RFC 3339, inclusive
        to (datetime.datetime | Unset): RFC 3339, exclusive
        kind (list[str] | Unset): repeat or comma-separate: deposit, withdrawal, transfer_in,
            transfer_out, reserve, cancel, recognize, release, expire

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | StatementResponse]
    """

    kwargs = _get_kwargs(
        user_id=user_id,
        sort=sort,
        order=order,
        limit=limit,
        cursor=cursor,
        page=page,
        from_=from_,
        to=to,
        kind=kind,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    user_id: int,
    *,
    client: AuthenticatedClient,
    sort: ListUserTransactionsSort | Unset = UNSET,
    order: ListUserTransactionsOrder | Unset = UNSET,
    limit: int | Unset = 50,
    cursor: str | Unset = UNSET,
    page: int | Unset = UNSET,
    from_: datetime.datetime | Unset = UNSET,
    to: datetime.datetime | Unset = UNSET,
    kind: list[str] | Unset = UNSET,
) -> Problem | StatementResponse | None:
    """List a user's transactions (statement)

    Args:
        user_id (int):
        sort (ListUserTransactionsSort | Unset): date (default) or amount (size)
        order (ListUserTransactionsOrder | Unset): desc (default)
        limit (int | Unset):  Default: 50.
        cursor (str | Unset): next_cursor of the previous page
        page (int | Unset): 1-based page (instead of a cursor)
        from_ (datetime.datetime | Unset): RFC 3339, inclusive
        to (datetime.datetime | Unset): RFC 3339, exclusive
        kind (list[str] | Unset): repeat or comma-separate: deposit, withdrawal, transfer_in,
            transfer_out, reserve, cancel, recognize, release, expire

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | StatementResponse
    """

    return (
        await asyncio_detailed(
            user_id=user_id,
            client=client,
            sort=sort,
            order=order,
            limit=limit,
            cursor=cursor,
            page=page,
            from_=from_,
            to=to,
            kind=kind,
        )
    ).parsed
